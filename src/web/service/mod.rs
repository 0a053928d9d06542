//! What the JSON API (`web/api`) and the pages (`web/ui`) both do, in one place: adapters call these, never
//! each other's handlers. Errors are the web layer's [`ApiError`](crate::web::error::ApiError); the pages turn
//! them into notices. Runs are started through [`RunService`](crate::worker::RunService) directly
//! (`StartError` converts into `ApiError`).

pub mod assets;
pub mod identities;
pub mod identity_photos;
pub mod images;
pub mod projects;
pub mod runs;
pub mod session;
pub mod system;
pub mod training;
