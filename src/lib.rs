//! devatar: turns a script into a talking-avatar video of a real person.
pub mod lora;
pub mod net;
