//! The integration suite, one test binary (one link instead of one per file): real `devatar` processes,
//! real ffmpeg, SQLite and (with `DEVATAR_TEST_BACKEND=postgres`) PostgreSQL, fake providers over real HTTP,
//! an S3-compatible server and Chromium.
//!
//! Modules whose behaviour depends on the database backend are named in `scripts/test.sh`'s PostgreSQL pass.

mod common;

mod api;
mod cli_bad_input;
mod cli_estimate;
mod cli_render;
mod cli_resume;
mod cloud_render;
mod crash_points;
mod face;
mod fakes;
mod fakes_faces;
mod fault_matrix;
mod fetch_guard;
mod identity_gate;
mod identity_photos;
mod job_hooks;
mod local_providers;
mod local_voice;
mod lora_inspect;
mod media_join;
mod postgres_backend;
mod s3_storage;
mod talk;
mod training;
mod ui_browser;
mod workers;
