//! Offline providers: no keys, no network, real media.

mod animation;
mod mux;
mod portrait;
mod speech;

pub use animation::{CameraMove, FfmpegAnimation, camera_move};
pub use mux::LocalMux;
pub use portrait::{FACE_FRAMING, PortraitStill, mood_tint, render_placeholder};
pub use speech::EspeakSpeech;

/// Frames per second of every clip the local providers make.
pub const FPS: u32 = 25;
