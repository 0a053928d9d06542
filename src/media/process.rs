//! Running one media tool with a deadline, killing it if we stop waiting.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

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
    let mut cmd = tool_command(program).map_err(|source| MediaError::Spawn {
        program: program.into(),
        source,
    })?;
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| MediaError::Spawn {
        program: program.into(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its stdin; its exit status tells the real story.
        let _ = pipe.write_all(input).await;
        drop(pipe);
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| MediaError::Timeout {
            program: program.into(),
            seconds: timeout.as_secs(),
        })?
        .map_err(|source| MediaError::Spawn {
            program: program.into(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(MediaError::Failed {
            program: program.into(),
            status: output.status.to_string(),
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    Ok(output.stdout)
}
