//! Offline providers: no keys, no network, real media.

mod animation;
mod mux;
mod piper;
mod piper_server;
mod portrait;
mod speech;
pub mod talk;

pub use animation::{CameraMove, FfmpegAnimation, camera_move, camera_path};
pub use mux::LocalMux;
pub use piper::{DEFAULT_PIPER_DIR, DEFAULT_PIPER_VOICE, PiperSpeech};
pub use portrait::{FACE_FRAMING, PortraitStill, mood_tint, render_placeholder};
pub use speech::EspeakSpeech;
pub use talk::LocalTalk;

/// Frames per second of every clip the local providers make.
pub const FPS: u32 = 25;
