//! Media tools: ffmpeg/ffprobe/espeak-ng subprocesses (timeouts, kill-on-drop, typed errors) and captions; the
//! edits the pipeline uses sit behind [`MediaEditor`] ([`Ffmpeg`] by default).

pub mod captions;
pub mod compose;
pub mod edit;
mod editor;
mod mix;
mod parts;
mod probe;
mod process;
pub mod splice;
mod tools;
mod wav;

pub use editor::{Ffmpeg, MediaEditor};
pub use parts::SpliceParts;
pub use probe::{MediaInfo, VideoPackets, probe, probe_packets};
pub use process::{MediaError, run_tool};
pub use splice::JoinClip;
pub use tools::{MissingTools, REQUIRED_TOOLS, find_tool, require_tools};
pub use wav::{pcm16_mono, wav_seconds};
