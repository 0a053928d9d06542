//! Render progress on stderr: bars on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::domain::StepName;
use crate::pipeline::{Event, EventKind, Progress};

/// Chooses bars or plain lines depending on whether stderr is a terminal.
pub fn reporter(scenes: &[String]) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::new(scenes))
    } else {
        Box::new(Lines)
    }
}

/// One plain line per event.
struct Lines;

impl Progress for Lines {
    fn on(&self, e: &Event) {
        let scene = e.scene.as_deref().unwrap_or("project");
        match &e.kind {
            EventKind::Started => eprintln!("[{scene}] {} started", e.step.as_str()),
            EventKind::Finished { cached: true, .. } => {
                eprintln!("[{scene}] {} cached", e.step.as_str())
            }
            EventKind::Finished { ms, .. } => eprintln!(
                "[{scene}] {} done in {:.1} s",
                e.step.as_str(),
                *ms as f64 / 1000.0
            ),
            EventKind::Failed(reason) => {
                eprintln!("[{scene}] {} FAILED: {reason}", e.step.as_str())
            }
        }
    }
}

/// One bar per scene (5 steps) plus one for the project.
struct Bars {
    bars: Mutex<HashMap<String, ProgressBar>>,
    _multi: MultiProgress,
}

impl Bars {
    fn new(scenes: &[String]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:20}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let mut bars = HashMap::new();
        for name in scenes
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("project"))
        {
            let len = if name == "project" {
                1
            } else {
                StepName::SCENE_STEPS.len() as u64
            };
            let bar = multi.add(ProgressBar::new(len));
            bar.set_style(style.clone());
            bar.set_prefix(name.chars().take(16).collect::<String>());
            bar.set_message("waiting");
            bars.insert(name.to_string(), bar);
        }
        Self {
            bars: Mutex::new(bars),
            _multi: multi,
        }
    }
}

impl Progress for Bars {
    fn on(&self, e: &Event) {
        let Ok(bars) = self.bars.lock() else { return };
        let Some(bar) = bars.get(e.scene.as_deref().unwrap_or("project")) else {
            return;
        };
        match &e.kind {
            EventKind::Started => bar.set_message(format!("{}…", e.step.as_str())),
            EventKind::Finished { cached, .. } => {
                bar.inc(1);
                bar.set_message(format!(
                    "{} {}",
                    e.step.as_str(),
                    if *cached { "cached" } else { "done" }
                ));
                if bar.position() >= bar.length().unwrap_or(0) {
                    bar.finish();
                }
            }
            EventKind::Failed(reason) => {
                bar.abandon_with_message(format!("{} failed: {reason}", e.step.as_str()))
            }
        }
    }
}
