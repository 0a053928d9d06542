//! Job-completion webhooks the sandbox sends: when a submit named a callback URL (Fal `?fal_webhook=`, Kling
//! `callback_url`, Sync `webhookUrl`), the job's documented body is POSTed to it once, when the job finishes
//! (a stalled job never does), fire-and-forget with a 5 s timeout; failures are ignored. Only loopback URLs are
//! called (the sandbox is a local test tool). Counted in `/__stats`: `webhooks.sent` (answered 2xx),
//! `webhooks.failed` (no answer or another status), `webhooks.refused` (not a loopback http URL).

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::server::Ctx;

/// How long after its clock says done the webhook goes, so a status call it triggers sees the job finished.
const MARGIN: Duration = Duration::from_millis(5);

/// An `http(s)` URL on a loopback address (or `localhost`).
fn loopback(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let host_ok = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    matches!(u.scheme(), "http" | "https") && host_ok
}

/// Sends `body(ctx)` to `url` once `due` has passed (`None`: the job never finishes); `body` answers `None`
/// when there is nothing to report any more (the job was cancelled or forgotten).
pub(crate) fn after_finish<F, Fut>(ctx: &Ctx, url: Option<String>, due: Option<Duration>, body: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Value>> + Send + 'static,
{
    let (Some(url), Some(due)) = (url, due) else {
        return;
    };
    if !loopback(&url) {
        ctx.shared.count("webhooks.refused");
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(due + MARGIN).await;
        let shared = ctx.shared.clone();
        let Some(body) = body(ctx).await else {
            return;
        };
        let sent = shared
            .http
            .post(&url)
            .timeout(Duration::from_secs(5))
            .json(&body)
            .send()
            .await;
        shared.count(match sent {
            Ok(r) if r.status().is_success() => "webhooks.sent",
            _ => "webhooks.failed",
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_called() {
        for ok in [
            "http://127.0.0.1:9/hooks/jobs/x",
            "http://localhost/x",
            "https://[::1]:8/x",
        ] {
            assert!(loopback(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/x",
            "https://example.com/x",
            "ftp://127.0.0.1/x",
            "nope",
        ] {
            assert!(!loopback(bad), "{bad}");
        }
    }
}
