//! Running one media tool with a deadline, killing it if we stop waiting.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// A media tool failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The program could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// Program name.
        program: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The program ran past its deadline and was killed.
    #[error("{program} timed out after {seconds} s")]
    Timeout {
        /// Program name.
        program: String,
        /// Deadline in seconds.
        seconds: u64,
    },
    /// The program exited unsuccessfully.
    #[error("{program} failed ({status}): {stderr_tail}")]
    Failed {
        /// Program name.
        program: String,
        /// Exit status text.
        status: String,
        /// Last lines of its stderr.
        stderr_tail: String,
    },
    /// A file the edit reads or writes could not be.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the file.
        what: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Its output could not be understood.
    #[error("{program} output could not be read: {reason}")]
    BadOutput {
        /// Program name.
        program: String,
        /// What was wrong.
        reason: String,
    },
}

/// A command starting `program` that dies with devatar (even when devatar is SIGKILLed) instead of writing on as
/// an orphan: through util-linux's `setpriv --pdeathsig KILL` when it is installed, else with
/// `prctl(PR_SET_PDEATHSIG)` in a `pre_exec` hook.
///
/// The hook forces a `fork()` of devatar for every tool, and copying the page tables of a process with a
/// thousand scenes in flight was over half of devatar's own CPU time (perf, 1,000-scene render); without a hook
/// the standard library starts the child with `posix_spawn` (no copy), and setpriv sets the signal after it.
/// `program` is looked up on the search path first, so a missing tool is still a start error.
pub(crate) fn tool_command(program: &str) -> std::io::Result<Command> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    let setpriv = SETPRIV.get_or_init(|| super::find_tool("setpriv"));
    let path = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        super::find_tool(program)
    };
    match (setpriv, path) {
        (Some(setpriv), Some(path)) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(path);
            Ok(cmd)
        }
        (None, _) => {
            let mut cmd = Command::new(program);
            // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            Ok(cmd)
        }
        (Some(_), None) => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{program} is not on the search path"),
        )),
    }
}

/// Runs `program args…`, feeding `stdin` if given, and returns its stdout.
///
/// The child is killed when the deadline passes or the future is dropped (e.g. on cancellation).
pub async fn run_tool(
    program: &str,
    args: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>, MediaError> {
    let mut tool = RunningTool::start(program, args, stdin.is_some())?;
    if let (Some(input), Some(mut pipe)) = (stdin, tool.take_stdin()) {
        // A tool that exits early closes its stdin; its exit status tells the real story.
        let _ = pipe.write_all(input).await;
        drop(pipe);
    }
    tool.wait(timeout).await
}

/// A started tool (see [`run_tool`]), killed when dropped before [`RunningTool::wait`] returns.
pub(crate) struct RunningTool {
    program: String,
    /// What it writes (its last argument), for the log.
    output: String,
    child: Child,
    started: std::time::Instant,
}

impl RunningTool {
    /// Starts `program args…` with its stdout and stderr captured and, when `stdin`, a pipe to its stdin.
    pub(crate) fn start(program: &str, args: &[String], stdin: bool) -> Result<Self, MediaError> {
        let spawn_error = |source| MediaError::Spawn {
            program: program.into(),
            source,
        };
        let mut cmd = tool_command(program).map_err(spawn_error)?;
        cmd.args(args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(Self {
            program: program.into(),
            output: args.last().cloned().unwrap_or_default(),
            child: cmd.spawn().map_err(spawn_error)?,
            started: std::time::Instant::now(),
        })
    }

    /// The pipe to its stdin (once; `None` without one).
    pub(crate) fn take_stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for it to exit (killing it after `timeout`) and returns its stdout; an error with the end of its
    /// stderr when it failed.
    pub(crate) async fn wait(self, timeout: Duration) -> Result<Vec<u8>, MediaError> {
        let Self {
            program,
            output,
            child,
            started,
        } = self;
        let result = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| MediaError::Timeout {
                program: program.clone(),
                seconds: timeout.as_secs(),
            })?
            .map_err(|source| MediaError::Spawn {
                program: program.clone(),
                source,
            })?;
        tracing::debug!(
            program,
            output,
            ms = started.elapsed().as_millis() as u64,
            "tool finished"
        );
        if !result.status.success() {
            let stderr = String::from_utf8_lossy(&result.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            return Err(MediaError::Failed {
                program,
                status: result.status.to_string(),
                stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        Ok(result.stdout)
    }
}
