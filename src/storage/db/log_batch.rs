//! Group commit of log rows: the rows steps hand in while a write is under way go into the next statement
//! together, so a thousand scenes logging at once make a few statements instead of a thousand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{Db, LogInput};

/// Rows at most in one statement (11 parameters each, far below either engine's limit).
const MAX_ROWS: usize = 64;

type Pending = (LogInput, oneshot::Sender<Result<(), String>>);

/// Writes log rows for concurrent callers, grouping the rows that queue up while a write is under way into one
/// statement. Each caller still waits until its own row is written (or the write failed).
#[derive(Debug, Clone)]
pub struct LogBatcher {
    db: Db,
    queue: Arc<OnceLock<mpsc::Sender<Pending>>>,
    statements: Arc<AtomicUsize>,
}

impl LogBatcher {
    /// A batcher writing to `db`; its writer task starts with the first row.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            queue: Arc::default(),
            statements: Arc::default(),
        }
    }

    /// Writes `row`, with whatever other rows are waiting; `Err` says why the write failed.
    pub async fn insert(&self, row: LogInput) -> Result<(), String> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(MAX_ROWS * 4);
            tokio::spawn(write_groups(self.db.clone(), rx, self.statements.clone()));
            tx
        });
        let (done, written) = oneshot::channel();
        match queue.send((row, done)).await {
            Ok(()) => written
                .await
                .unwrap_or_else(|_| Err("the log writer stopped".into())),
            // The writer's runtime is gone (a batcher outliving it): write the row alone.
            Err(mpsc::error::SendError((row, _))) => {
                self.db.insert_log(&row).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Statements written so far by the writer task.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Writes what is queued, up to [`MAX_ROWS`] rows a statement, until every batcher is dropped.
async fn write_groups(db: Db, mut queue: mpsc::Receiver<Pending>, statements: Arc<AtomicUsize>) {
    let mut group = Vec::with_capacity(MAX_ROWS);
    while queue.recv_many(&mut group, MAX_ROWS).await > 0 {
        let (rows, waiting): (Vec<LogInput>, Vec<_>) = group.drain(..).unzip();
        let result = db.insert_logs(&rows).await.map_err(|e| e.to_string());
        statements.fetch_add(1, Ordering::Relaxed);
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::LogFilter;

    fn row(n: usize) -> LogInput {
        LogInput {
            run_id: None,
            project_id: None,
            scene_id: None,
            step: "VIDEO_GENERATION".into(),
            level: "INFO".into(),
            provider: Some("kling".into()),
            message: format!("row {n}"),
            duration_ms: Some(n as i64),
            payload: None,
        }
    }

    /// Rows written at once by many callers all land, each once, with their own fields, in fewer statements than
    /// rows (and more than one: a group holds at most 64).
    #[tokio::test]
    async fn concurrent_rows_all_land_once_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&Db::sqlite_url(dir.path())).await.unwrap();
        let batcher = LogBatcher::new(db.clone());
        let writes: Vec<_> = (0..200)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { b.insert(row(n)).await })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        let filter = LogFilter {
            limit: 1000,
            ..LogFilter::default()
        };
        let rows = db.query_logs(&filter).await.unwrap();
        let mut messages: Vec<String> = rows.iter().map(|r| r.message.clone()).collect();
        messages.sort();
        messages.dedup();
        assert_eq!(messages.len(), 200);
        assert_eq!(rows.len(), 200);
        let r = rows.iter().find(|r| r.message == "row 7").unwrap();
        assert_eq!(r.duration_ms, Some(7));
        assert_eq!(r.provider.as_deref(), Some("kling"));
        let statements = batcher.statements();
        assert!(
            (2..200).contains(&statements),
            "{statements} statements for 200 rows"
        );
    }
}
