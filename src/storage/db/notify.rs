//! Wake-ups between processes: PostgreSQL `LISTEN`/`NOTIFY`. SQLite has none, so callers keep polling as the
//! fallback (and keep a slower poll on PostgreSQL too, since a notification can be missed while reconnecting).

use std::sync::Arc;
use std::time::Duration;

use super::Db;

/// The channel announcing a queued run (a new one, or one given back by a stopping worker).
pub const RUNS_CHANNEL: &str = "devatar_runs";

/// The PostgreSQL URL kept for the listener connection; never printed (it may hold a password).
#[derive(Clone)]
pub(super) struct ListenUrl(pub(super) Arc<str>);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenUrl(***)")
    }
}

impl Db {
    /// Sends a notification on PostgreSQL; does nothing on SQLite. A failure is only logged: the listeners'
    /// polling fallback still finds the work.
    pub async fn notify(&self, channel: &str, payload: &str) {
        if self.is_sqlite {
            return;
        }
        // `pg_notify` returns `void`, which the Any driver cannot decode: select a constant instead.
        let sent = sqlx::query("SELECT 1 AS sent FROM (SELECT pg_notify($1, $2)) AS n")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::debug!(channel, "notify failed: {e}");
        }
    }

    /// On PostgreSQL, spawns a task that listens on `channels` and calls `on(channel)` for every notification,
    /// reconnecting after errors; returns false (and does nothing) on SQLite.
    pub fn listen(
        &self,
        channels: &'static [&'static str],
        on: impl Fn(&str) + Send + Sync + 'static,
    ) -> bool {
        let Some(url) = self.listen_url.clone() else {
            return false;
        };
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url.0).await {
                    Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                        Ok(()) => {
                            // Whatever was announced before we listened is found by looking once now.
                            for channel in channels {
                                on(channel);
                            }
                            loop {
                                match listener.recv().await {
                                    Ok(n) => on(n.channel()),
                                    Err(e) => {
                                        tracing::warn!("notification listener lost: {e}");
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!("LISTEN failed: {e}"),
                    },
                    Err(e) => tracing::warn!("notification listener cannot connect: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        true
    }
}
