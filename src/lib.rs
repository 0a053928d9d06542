//! devatar: turns a script into a talking-avatar video of a real person.

pub mod app;
pub mod cli;
pub mod config;
pub mod costs;
pub mod domain;
pub mod face;
pub mod failpoint;
pub mod fakes;
#[cfg(test)]
mod fuzz;
pub mod identity_check;
pub mod identity_photos;
pub mod lora;
pub mod media;
pub mod net;
pub mod pipeline;
pub mod project_file;
pub mod providers;
pub mod storage;
pub mod training;
pub mod web;
pub mod webhooks;
pub mod worker;
