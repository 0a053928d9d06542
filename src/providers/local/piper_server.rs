//! One long-running Piper process per voice: Python, onnxruntime and the voice load once per run (about a
//! second of CPU each time) instead of once per scene. Requests are JSON lines on its stdin, answers JSON lines
//! on its stdout. A task owns each process: it loads the voice, then takes the waiting requests longest text
//! first — the longest line is the start of the render's longest scene, so its speech should not wait behind
//! the short ones; while one process is busy a second one starts on a machine with two cores (the voice's load
//! is a second of one core that the other scenes cannot use yet). A process that fails or times out is killed and
//! started again for the next request. It dies with devatar (kill on drop, and `PR_SET_PDEATHSIG` when devatar itself is killed).

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
use tokio::sync::{Notify, oneshot};

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

/// One request to a voice.
struct Job {
    text: String,
    out: PathBuf,
    reply: oneshot::Sender<Result<f64, ProviderError>>,
}

/// The most processes one voice runs: on 2 cores a second one loads and speaks while the first is busy (the
/// demo's three lines were spoken 1 s sooner), more would only take turns on the cores.
fn max_processes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// One voice's waiting requests and the tasks (one process each) serving them.
struct Voice {
    python: PathBuf,
    model: PathBuf,
    waiting: Mutex<Vec<Job>>,
    wake: Notify,
    /// Tasks running for this voice.
    tasks: AtomicUsize,
    /// Tasks with a loaded voice and nothing to say.
    idle: AtomicUsize,
    /// Processes started (all voices of the installation).
    started: Arc<AtomicUsize>,
}

/// The running Piper processes of one installation, per voice model (see the module documentation).
#[derive(Default, Clone)]
pub struct PiperServers {
    voices: Arc<Mutex<HashMap<PathBuf, Arc<Voice>>>>,
    started: Arc<AtomicUsize>,
}

impl std::fmt::Debug for PiperServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiperServers")
    }
}

impl PiperServers {
    /// How many processes were started so far (per voice one, a second one while the first is busy on a
    /// machine with two cores or more, plus one after each failure).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Speaks `text` with the voice `model` (a `.onnx` file) through `python` into the WAV file `out`,
    /// starting that voice's processes as needed; the speech's length in seconds. Waiting requests are served
    /// longest text first.
    pub async fn speak(
        &self,
        python: &Path,
        model: &Path,
        text: &str,
        out: &Path,
    ) -> Result<f64, ProviderError> {
        let voice = self.voice(python, model)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text: text.to_string(),
            out: out.to_path_buf(),
            reply,
        };
        let waiting = {
            let mut waiting = voice
                .waiting
                .lock()
                .map_err(|_| failed("its queue was poisoned"))?;
            waiting.push(job);
            waiting.len()
        };
        voice.wake.notify_one();
        let tasks = voice.tasks.load(Ordering::SeqCst);
        if tasks == 0 || (waiting > voice.idle.load(Ordering::SeqCst) && tasks < max_processes()) {
            voice.tasks.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(voice.clone()));
        }
        answer
            .await
            .map_err(|_| failed("its task stopped before answering"))?
    }

    /// The voice of `model`, created when new.
    fn voice(&self, python: &Path, model: &Path) -> Result<Arc<Voice>, ProviderError> {
        let mut voices = self
            .voices
            .lock()
            .map_err(|_| failed("its voice table was poisoned"))?;
        let voice = voices.entry(model.to_path_buf()).or_insert_with(|| {
            Arc::new(Voice {
                python: python.to_path_buf(),
                model: model.to_path_buf(),
                waiting: Mutex::default(),
                wake: Notify::new(),
                tasks: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                started: self.started.clone(),
            })
        });
        Ok(voice.clone())
    }
}

/// Takes the waiting request with the longest text (its scene's chain is the longest).
fn take_longest(waiting: &mut Vec<Job>) -> Option<Job> {
    let longest = (0..waiting.len()).max_by_key(|&i| waiting[i].text.len())?;
    Some(waiting.swap_remove(longest))
}

impl Voice {
    /// The next request to speak, waiting for one (as an idle task) when there is none.
    async fn next(&self) -> Job {
        loop {
            if let Some(job) = self
                .waiting
                .lock()
                .ok()
                .and_then(|mut w| take_longest(&mut w))
            {
                return job;
            }
            self.idle.fetch_add(1, Ordering::SeqCst);
            self.wake.notified().await;
            self.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Answers every waiting request with the failure `why` (the voice cannot be loaded).
    fn fail_all(&self, why: &str) {
        let jobs: Vec<Job> = self
            .waiting
            .lock()
            .map(|mut w| w.drain(..).collect())
            .unwrap_or_default();
        for job in jobs {
            let _ = job
                .reply
                .send(Err(ProviderError::BadOutput(why.to_string())));
        }
    }

    /// Starts a process and waits until its voice has loaded.
    async fn load(&self) -> Result<Server, ProviderError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let loaded = async {
            let mut s = Server::start(&self.python, &self.model)?;
            s.loaded().await?;
            Ok::<_, ProviderError>(s)
        };
        tokio::time::timeout(DEADLINE, loaded).await.map_err(|_| {
            failed(format!(
                "the voice did not load within {} s",
                DEADLINE.as_secs()
            ))
        })?
    }
}

/// Counts a voice's task out when it ends (also when its runtime stops).
struct TaskCount(Arc<Voice>);

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One process's task: loads the voice, then speaks the waiting requests longest first (skipping one whose step
/// was cancelled); a process that fails is started again for the next request. If the voice cannot be loaded,
/// every waiting request gets the reason and the task ends.
async fn serve(voice: Arc<Voice>) {
    let count = TaskCount(voice);
    let voice = &count.0;
    let mut server: Option<Server> = None;
    loop {
        let running = match server.as_mut() {
            Some(running) => running,
            None => match voice.load().await {
                Ok(loaded) => server.insert(loaded),
                Err(e) => {
                    voice.fail_all(&e.to_string());
                    return;
                }
            },
        };
        let job = voice.next().await;
        if job.reply.is_closed() {
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_waiting_line_is_spoken_first() {
        let job = |text: &str| Job {
            text: text.into(),
            out: PathBuf::from(text),
            reply: oneshot::channel().0,
        };
        let mut waiting = vec![
            job("Short."),
            job("The longest line of all three."),
            job("A middle one."),
        ];
        let order: Vec<String> = std::iter::from_fn(|| take_longest(&mut waiting))
            .map(|j| j.text)
            .collect();
        assert_eq!(
            order,
            ["The longest line of all three.", "A middle one.", "Short."]
        );
    }
}
