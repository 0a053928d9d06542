//! Media tools: ffmpeg/ffprobe/espeak-ng subprocesses (timeouts, kill-on-drop, typed errors) and captions.

pub mod captions;
pub mod edit;
mod probe;
mod process;
pub mod splice;
mod tools;

pub use probe::{MediaInfo, probe};
pub use process::{MediaError, run_tool};
pub use tools::{MissingTools, REQUIRED_TOOLS, find_tool, require_tools};
