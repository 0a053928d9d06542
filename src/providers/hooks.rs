//! Provider job-completion webhooks, used only as wake-ups.
//!
//! When this process can be reached by the providers (`DEVATAR_PUBLIC_URL` for `serve`, or
//! `DEVATAR_CALLBACK_LISTEN`), each submit carries `{base}/hooks/jobs/{token}` with an unguessable per-job token
//! (Fal `?fal_webhook=`, Kling `callback_url`, Sync `webhookUrl`). A POST to it wakes the poll loop of that job,
//! which then asks the provider at once: the provider's status answer stays the only source of truth, the
//! webhook body is never read, so a forged call can at most cause one extra status call. Polling keeps its
//! schedule as the fallback.
//!
//! The registry is in memory: the process that polls a job must be the one that receives its webhook (each
//! `devatar worker` that should be woken runs its own listener with its own reachable base URL).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// The route path in front of a token.
pub const PATH_PREFIX: &str = "/hooks/jobs/";

/// Why a callback base URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Not an absolute http(s) URL without user info, query or fragment.
    #[error(
        "expected an http(s) base URL without user info, query or fragment, e.g. https://devatar.example"
    )]
    BadBase,
}

/// The in-memory registry of jobs waiting for a webhook: token digest → the poll loop's wake-up.
#[derive(Clone)]
pub struct JobHooks {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    waiting: Mutex<HashMap<[u8; 32], Arc<Notify>>>,
    wakes: AtomicU64,
}

impl PartialEq for JobHooks {
    /// The same registry.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for JobHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHooks")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// One job's registration: its callback URL and wake-up; dropping it unregisters the token.
pub struct Hook {
    hooks: JobHooks,
    digest: [u8; 32],
    url: String,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook(..)")
    }
}

/// The lookup key of a token: comparing SHA-256 digests in a hash map reveals nothing about the token's bytes
/// through timing (the same reason API tokens are stored as digests).
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A well-formed token: 64 lowercase hex characters.
fn is_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl JobHooks {
    /// A registry whose callback URLs start with `base` (e.g. `https://devatar.example`).
    pub fn new(base: &str) -> Result<Self, HookError> {
        let base = base.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|_| HookError::BadBase)?;
        let ok = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !ok {
            return Err(HookError::BadBase);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                base: base.to_string(),
                waiting: Mutex::default(),
                wakes: AtomicU64::new(0),
            }),
        })
    }

    /// The base URL callbacks are addressed to.
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// Registers a job: again under the callback URL stored for it earlier (`stored`, so a resumed job is still
    /// woken; `None` when that URL is not one of this registry's, e.g. another listener's), else under a fresh
    /// token (`None` only when the operating system has no randomness to give).
    pub fn register(&self, stored: Option<&str>) -> Option<Hook> {
        let token = match stored {
            Some(url) => self.token_of(url)?.to_string(),
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).ok()?;
                hex::encode(bytes)
            }
        };
        let notify = Arc::new(Notify::new());
        let digest = digest(&token);
        if let Ok(mut w) = self.inner.waiting.lock() {
            w.insert(digest, notify.clone());
        }
        Some(Hook {
            hooks: self.clone(),
            digest,
            url: format!("{}{PATH_PREFIX}{token}", self.inner.base),
            notify,
        })
    }

    /// The token of `url` when it is a callback URL of this registry.
    fn token_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        let token = url
            .strip_prefix(self.inner.base.as_str())?
            .strip_prefix(PATH_PREFIX)?;
        is_token(token).then_some(token)
    }

    /// Wakes the job registered under `token`; false when no job waits for it (the route answers 404).
    pub fn wake(&self, token: &str) -> bool {
        if !is_token(token) {
            return false;
        }
        let found = self
            .inner
            .waiting
            .lock()
            .ok()
            .and_then(|w| w.get(&digest(token)).cloned());
        match found {
            Some(n) => {
                // A stored permit: a webhook that arrives while a status call is in flight still counts.
                n.notify_one();
                self.inner.wakes.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Webhooks that woke a waiting job so far.
    pub fn wakes(&self) -> u64 {
        self.inner.wakes.load(Ordering::Relaxed)
    }

    /// Jobs registered now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }
}

impl Hook {
    /// The callback URL to hand the provider.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The wake-up a poll loop waits on next to its timer.
    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Ok(mut w) = self.hooks.inner.waiting.lock()
            && w.get(&self.digest)
                .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            w.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_wake_only_their_job_and_leave_with_it() {
        let hooks = JobHooks::new("http://127.0.0.1:9/").unwrap();
        let hook = hooks.register(None).unwrap();
        assert!(hook.url().starts_with("http://127.0.0.1:9/hooks/jobs/"));
        let token = hook.url().rsplit('/').next().unwrap().to_string();
        assert!(is_token(&token), "{token}");
        assert!(!hooks.wake(&"0".repeat(64)));
        assert!(!hooks.wake("../x"));
        assert!(hooks.wake(&token));
        assert_eq!(hooks.wakes(), 1);
        // A resumed job registers the same URL again.
        let again = hooks.register(Some(hook.url())).unwrap();
        assert_eq!(again.url(), hook.url());
        let elsewhere = format!("http://127.0.0.1:8/hooks/jobs/{token}");
        assert!(hooks.register(Some(&elsewhere)).is_none());
        drop(hook);
        drop(again);
        assert_eq!(hooks.waiting(), 0);
        assert!(!hooks.wake(&token));
    }

    #[test]
    fn a_base_must_be_a_plain_http_url() {
        for bad in ["", "ftp://x", "http://u:p@x", "http://x/?a=1", "not a url"] {
            assert!(JobHooks::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            JobHooks::new("https://d.example/sub/").unwrap().base(),
            "https://d.example/sub"
        );
    }
}
