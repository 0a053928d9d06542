//! JSON API handlers, one module per resource.

pub mod assets;
pub mod estimate;
pub mod follow;
pub mod identities;
pub mod identity_photos;
pub mod projects;
pub mod runs;
pub mod scenes;
pub mod system;
pub mod training;
pub mod webhooks;
