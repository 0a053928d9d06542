//! One long-running Piper process per voice: Python, onnxruntime and the voice load once per run (about a
//! second of CPU each time) instead of once per scene. Requests are JSON lines on its stdin, answers JSON lines
//! on its stdout. A task per voice owns the process and serves the waiting requests longest text first once
//! the voice has loaded: the longest line is the start of the render's longest scene, so its speech should not
//! wait behind the short ones. A process that fails or times out is killed and started again for the next
//! request. It dies with devatar (kill on drop, and `PR_SET_PDEATHSIG` when devatar itself is killed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

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
print(json.dumps({"ready": True}), flush=True)
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

/// An answer line (or the line saying the voice has loaded).
#[derive(Deserialize)]
struct Answer {
    out: Option<String>,
    seconds: Option<f64>,
    error: Option<String>,
    #[serde(default)]
    ready: bool,
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

    /// Waits for the line saying the voice has loaded.
    async fn loaded(&mut self) -> Result<(), ProviderError> {
        loop {
            let Some(line) = self.stdout.next_line().await.map_err(failed)? else {
                return Err(failed("it exited (is the voice a valid Piper model?)"));
            };
            if serde_json::from_str::<Answer>(&line).is_ok_and(|a| a.ready) {
                return Ok(());
            }
        }
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

/// One request to a voice's task.
struct Job {
    text: String,
    out: PathBuf,
    reply: oneshot::Sender<Result<f64, ProviderError>>,
}

/// The running Piper processes of one installation: one task per voice model, fed through its queue.
#[derive(Default, Clone)]
pub struct PiperServers {
    voices: Arc<Mutex<HashMap<PathBuf, mpsc::UnboundedSender<Job>>>>,
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
    /// starting that voice's task and process when none runs; the speech's length in seconds. Requests to one
    /// voice are served one at a time, the longest waiting text first.
    pub async fn speak(
        &self,
        python: &Path,
        model: &Path,
        text: &str,
        out: &Path,
    ) -> Result<f64, ProviderError> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            text: text.to_string(),
            out: out.to_path_buf(),
            reply,
        };
        // A queue whose task has ended (its runtime stopped) is replaced once.
        for _ in 0..2 {
            let queue = self.queue(python, model)?;
            match queue.send(job) {
                Ok(()) => {
                    return answer
                        .await
                        .map_err(|_| failed("its task stopped before answering"))?;
                }
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    if let Ok(mut voices) = self.voices.lock() {
                        voices.remove(model);
                    }
                }
            }
        }
        Err(failed("its task could not be started"))
    }

    /// The queue of `model`'s task, started when there is none.
    fn queue(
        &self,
        python: &Path,
        model: &Path,
    ) -> Result<mpsc::UnboundedSender<Job>, ProviderError> {
        let mut voices = self
            .voices
            .lock()
            .map_err(|_| failed("its queue table was poisoned"))?;
        let queue = voices.entry(model.to_path_buf()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(serve(
                python.to_path_buf(),
                model.to_path_buf(),
                rx,
                self.started.clone(),
            ));
            tx
        });
        Ok(queue.clone())
    }
}

/// One voice's task: starts the process when a request comes, waits for the voice to load, then answers the
/// waiting requests longest text first (a request whose step was cancelled is skipped). Ends, killing the
/// process, when every sender is gone.
async fn serve(
    python: PathBuf,
    model: PathBuf,
    mut queue: mpsc::UnboundedReceiver<Job>,
    started: Arc<AtomicUsize>,
) {
    let mut server: Option<Server> = None;
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push(job),
                None => return,
            }
        }
        if server.is_none() {
            started.fetch_add(1, Ordering::Relaxed);
            let loaded = async {
                let mut s = Server::start(&python, &model)?;
                s.loaded().await?;
                Ok::<_, ProviderError>(s)
            };
            match tokio::time::timeout(DEADLINE, loaded).await {
                Ok(Ok(s)) => server = Some(s),
                Ok(Err(e)) => {
                    let why = e.to_string();
                    for job in waiting.drain(..) {
                        let _ = job.reply.send(Err(ProviderError::BadOutput(why.clone())));
                    }
                    continue;
                }
                Err(_) => {
                    for job in waiting.drain(..) {
                        let _ = job.reply.send(Err(failed(format!(
                            "the voice did not load within {} s",
                            DEADLINE.as_secs()
                        ))));
                    }
                    continue;
                }
            }
        }
        while let Ok(job) = queue.try_recv() {
            waiting.push(job);
        }
        let Some(longest) = (0..waiting.len()).max_by_key(|&i| waiting[i].text.len()) else {
            continue;
        };
        let job = waiting.swap_remove(longest);
        if job.reply.is_closed() {
            continue;
        }
        let Some(running) = server.as_mut() else {
            continue;
        };
        let result = match tokio::time::timeout(DEADLINE, running.speak(&job.text, &job.out)).await
        {
            Ok(Ok(seconds)) => Ok(seconds),
            Ok(Err(e)) => {
                server = None;
                Err(e)
            }
            Err(_) => {
                server = None;
                Err(failed(format!("no answer within {} s", DEADLINE.as_secs())))
            }
        };
        let _ = job.reply.send(result);
    }
}
