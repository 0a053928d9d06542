//! Fake faces: every fake still says who it shows (a `shows=` line: person names joined by `+`, empty for no
//! face), clips and frames carry their still's line on, and [`FakeFaces`] reads it back and maps each person to a
//! scripted embedding. Tests script drift with [`Calls::show_next`] (who the next stills show) and
//! [`Calls::show_in_frames`] (who sampled frames show), and place people with [`Calls::set_face`].

use std::path::Path;
use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::fakes::{Calls, Op, read_fake};
use crate::face::{Embedding, FaceError, FacePrint};
use crate::pipeline::FaceScorer;
use crate::providers::ImageRequest;

/// The person every fake still shows unless told otherwise (the kit's identity).
pub const DEFAULT_PERSON: &str = "ana";
/// Distance of [`DEFAULT_PERSON`] from [`fake_print`]: below the default threshold.
pub const DEFAULT_PERSON_DISTANCE: f64 = 0.2;
/// Distance from [`fake_print`] of a person nobody placed: above the default threshold.
pub const STRANGER_DISTANCE: f64 = 1.0;
/// Length of fake embeddings (the real engine's).
const DIMENSIONS: usize = 128;

/// A fake embedding at `distance` from [`fake_print`]'s centre.
pub fn fake_face(distance: f64) -> Embedding {
    let mut values = vec![0.0; DIMENSIONS];
    values[0] = distance as f32;
    Embedding(values)
}

/// The kit identity's face print: centred where [`fake_face`] measures from.
pub fn fake_print() -> FacePrint {
    FacePrint {
        references: vec![fake_face(0.0)],
        centre: fake_face(0.0),
    }
}

/// The `shows=` line of a fake file's text (`shows=` alone when it has none: no face).
fn shows_line(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("shows="))
        .unwrap_or("shows=")
        .to_string()
}

/// The `shows=` line of the fake file at `path` (what a clip made from it shows).
pub(super) fn shows_in(path: &Path) -> String {
    shows_line(&std::fs::read_to_string(path).unwrap_or_default())
}

impl Calls {
    /// The next stills show these (in call order; a name, names joined by `+` for several faces, or `""` for
    /// none); after them, stills show [`DEFAULT_PERSON`] again.
    pub fn show_next(&self, people: &[&str]) {
        if let Ok(mut q) = self.stills.lock() {
            q.extend(people.iter().map(|p| (*p).to_string()));
        }
    }

    /// Sampled frames show these, frame `i` the `i`-th (cycled), instead of whoever their clip shows.
    pub fn show_in_frames(&self, people: &[&str]) {
        if let Ok(mut f) = self.frames.lock() {
            *f = people.iter().map(|p| (*p).to_string()).collect();
        }
    }

    /// Places `person`'s face at `distance` from [`fake_print`].
    pub fn set_face(&self, person: &str, distance: f64) {
        if let Ok(mut p) = self.people.lock() {
            p.insert(person.to_string(), fake_face(distance));
        }
    }

    /// The fake face scorer acts as if the face models were missing (scoring is then skipped).
    pub fn remove_face_models(&self) {
        self.no_face_models.store(true, Ordering::SeqCst);
    }

    /// Each image request's (seed, LoRA scale) so far, in call order.
    pub fn image_requests(&self) -> Vec<(Option<u64>, Option<f64>)> {
        self.image_requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Image call `n` (1-based, counted since the last [`reset`](Self::reset)) and every later one never
    /// finish, like a provider that hangs (`0` lets every call finish again).
    pub fn stall_images_from(&self, n: usize) {
        self.stall_images_from.store(n, Ordering::SeqCst);
    }

    /// Records an image request, then hangs forever when told to ([`stall_images_from`](Self::stall_images_from)).
    pub(super) async fn image_request(&self, req: &ImageRequest) {
        if let Ok(mut r) = self.image_requests.lock() {
            r.push((req.seed, req.lora.as_ref().map(|l| l.scale)));
        }
        let from = self.stall_images_from.load(Ordering::SeqCst);
        if from > 0 && self.count(Op::Image) >= from {
            std::future::pending::<()>().await;
        }
    }

    /// The `shows=` line of the next still.
    pub(super) fn next_still(&self) -> String {
        let next = self.stills.lock().ok().and_then(|mut q| q.pop_front());
        format!("shows={}", next.as_deref().unwrap_or(DEFAULT_PERSON))
    }

    /// The `shows=` line of sampled frame `i` of a clip whose text is `clip`.
    pub(super) fn frame_shows(&self, i: usize, clip: &str) -> String {
        let scripted = self
            .frames
            .lock()
            .ok()
            .and_then(|f| (!f.is_empty()).then(|| f[i % f.len()].clone()));
        match scripted {
            Some(people) => format!("shows={people}"),
            None => shows_line(clip),
        }
    }

    /// The embedding of `person`.
    fn face_of(&self, person: &str) -> Embedding {
        let placed = self.people.lock().ok().and_then(|p| p.get(person).cloned());
        placed.unwrap_or_else(|| {
            fake_face(if person == DEFAULT_PERSON {
                DEFAULT_PERSON_DISTANCE
            } else {
                STRANGER_DISTANCE
            })
        })
    }
}

/// A fake face scorer: reads who a fake image shows; counts [`Op::Score`] (fails on request like the others).
pub struct FakeFaces(pub std::sync::Arc<Calls>);

#[async_trait]
impl FaceScorer for FakeFaces {
    async fn ready(&self) -> Result<(), FaceError> {
        if self.0.no_face_models.load(Ordering::SeqCst) {
            return Err(FaceError::ModelsMissing {
                dir: "/nonexistent/face-models".into(),
                missing: crate::face::models::REQUIRED.to_vec(),
            });
        }
        Ok(())
    }

    async fn embeddings(&self, path: &Path) -> Result<Vec<Embedding>, FaceError> {
        let undecodable = |reason: String| FaceError::Undecodable {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_fake(path).map_err(|e| undecodable(e.to_string()))?;
        self.0.call(Op::Score, &text).map_err(undecodable)?;
        let line = shows_line(&text);
        let people = line.trim_start_matches("shows=");
        Ok(people
            .split('+')
            .filter(|p| !p.is_empty())
            .map(|p| self.0.face_of(p))
            .collect())
    }
}
