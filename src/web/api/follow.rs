//! Following stored progress as Server-Sent Events: one loop for every `…/events` stream. A [`Source`] reads
//! what changed in the database since its last look and queues events for it; the loop sends them, waits
//! until the source may have news (a wake-up from this process, or [`FOLLOW_POLL`]), and ends the stream once
//! the source says the followed work is over. Reading stored rows (never only this process's memory) lets a
//! stream follow work done by any process.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};

use crate::storage::db::DbError;

/// How often a followed record is read again when nothing in this process announces a change.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// What a stream follows: a run, a training.
pub trait Source: Send + 'static {
    /// Queues an event in `out` for everything that changed since the last look; `Ok(true)` when the followed
    /// work is over (its last events queued), `Ok(false)` while it goes on.
    fn look(
        &mut self,
        out: &mut VecDeque<SseEvent>,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// Until there may be something new to look at: by default [`FOLLOW_POLL`].
    fn wait(&mut self) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(FOLLOW_POLL)
    }

    /// What is followed, for the warning when a look fails (e.g. `run 0192…`).
    fn label(&self) -> String;
}

/// The stream of `source`'s events, kept alive with comments, ending after its last event.
pub fn sse<S: Source>(
    source: S,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>> + Send + 'static> {
    let follower = Follower {
        source,
        pending: VecDeque::new(),
        looked: false,
        done: false,
    };
    let stream = futures::stream::unfold(follower, |mut f| async move {
        f.next().await.map(|event| (Ok(event), f))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A source with the events it queued and whether it is over.
struct Follower<S> {
    source: S,
    pending: VecDeque<SseEvent>,
    looked: bool,
    done: bool,
}

impl<S: Source> Follower<S> {
    /// The next event, looking (and waiting between looks) until there is one; `None` after the last.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            if self.looked {
                self.source.wait().await;
            }
            self.looked = true;
            match self.source.look(&mut self.pending).await {
                Ok(over) => self.done = over,
                Err(e) => tracing::warn!("following {}: {e}", self.source.label()),
            }
        }
    }
}
