//! One long-running Piper process per voice: Python, onnxruntime and the voice load once per run (about a
//! second of CPU each time) instead of once per scene. Requests are JSON lines on its stdin, answers JSON lines
//! on its stdout; a process that fails, times out or is abandoned mid-request is killed and started again for
//! the next one. It dies with devatar (kill on drop, and `PR_SET_PDEATHSIG` when devatar itself is killed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::providers::ProviderError;

/// The Python side: loads the voice named by its argument, then speaks each request line into its WAV file.
/// onnxruntime runs on one thread without spin-waiting: by default its two threads spin between operators,
/// which took twice the CPU (2.9–3.2 s instead of 1.4–1.5 s for the demo's three scenes, measured) from the
/// frame renders and encodes running beside it on 2 cores.
const SCRIPT: &str = r#"
import json, sys, wave
import onnxruntime
_Options = onnxruntime.SessionOptions
def _one_thread():
    o = _Options()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return o
onnxruntime.SessionOptions = _one_thread
from piper import PiperVoice
voice = PiperVoice.load(sys.argv[1])
for line in sys.stdin:
    req = {}
    try:
        req = json.loads(line)
        with wave.open(req["out"], "wb") as wav:
            voice.synthesize_wav(req["text"], wav)
            seconds = wav.getnframes() / wav.getframerate()
        print(json.dumps({"out": req["out"], "seconds": seconds}), flush=True)
    except Exception as e:
        print(json.dumps({"out": req.get("out"), "error": str(e)}), flush=True)
"#;

/// The longest one request (including the voice's first load) may take.
const DEADLINE: Duration = Duration::from_secs(300);

/// One running Piper.
struct Server {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// An answer line.
#[derive(Deserialize)]
struct Answer {
    out: Option<String>,
    seconds: Option<f64>,
    error: Option<String>,
}

fn failed(why: impl std::fmt::Display) -> ProviderError {
    ProviderError::BadOutput(format!("Piper: {why}"))
}

impl Server {
    fn start(python: &Path, model: &Path) -> Result<Self, ProviderError> {
        let mut cmd = Command::new(python);
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg(model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("could not start {}: {e}", python.display())))?;
        let stdin = child.stdin.take().ok_or_else(|| failed("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout"))?;
        Ok(Self {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// Speaks `text` into `out`; the speech's length in seconds.
    async fn speak(&mut self, text: &str, out: &Path) -> Result<f64, ProviderError> {
        let out = out.display().to_string();
        let mut line = json!({ "text": text, "out": out }).to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| failed(format!("it stopped reading ({e})")))?;
        loop {
            let Some(reply) = self.stdout.next_line().await.map_err(failed)? else {
                return Err(failed("it exited (is the voice a valid Piper model?)"));
            };
            // Anything else a library prints on stdout is skipped.
            let Ok(answer) = serde_json::from_str::<Answer>(&reply) else {
                continue;
            };
            if answer.out.as_deref() != Some(out.as_str()) {
                continue;
            }
            if let Some(error) = answer.error {
                return Err(failed(error));
            }
            return answer
                .seconds
                .ok_or_else(|| failed("it answered without the speech's length"));
        }
    }
}

/// One voice's process, when it runs (taken out while it serves a request).
type Slot = Arc<Mutex<Option<Server>>>;

/// The running Piper processes of one installation, one per voice model.
#[derive(Default, Clone)]
pub struct PiperServers {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
    started: Arc<AtomicUsize>,
}

impl std::fmt::Debug for PiperServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiperServers")
    }
}

impl PiperServers {
    /// How many processes were started so far (one per voice, plus one after each failure).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Speaks `text` with the voice `model` (a `.onnx` file) through `python` into the WAV file `out`,
    /// starting that voice's process when none runs; the speech's length in seconds. Requests to one voice are
    /// served one at a time.
    pub async fn speak(
        &self,
        python: &Path,
        model: &Path,
        text: &str,
        out: &Path,
    ) -> Result<f64, ProviderError> {
        let slot = self
            .slots
            .lock()
            .await
            .entry(model.to_path_buf())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        // Taken out while it works: if this future is dropped mid-request, the process is killed with it
        // rather than handing a stale answer to the next request.
        let mut server = match slot.take() {
            Some(server) => server,
            None => {
                self.started.fetch_add(1, Ordering::Relaxed);
                Server::start(python, model)?
            }
        };
        let seconds = tokio::time::timeout(DEADLINE, server.speak(text, out))
            .await
            .map_err(|_| failed(format!("no answer within {} s", DEADLINE.as_secs())))??;
        *slot = Some(server);
        Ok(seconds)
    }
}
