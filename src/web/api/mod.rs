//! JSON API handlers, one module per resource.

pub mod identities;
pub mod system;
