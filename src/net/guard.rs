//! The fetch guard: http(s) only, resolve and refuse internal addresses, connect to the address that was
//! checked, re-check every redirect (at most 3), with timeouts and size caps.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode, Url, header};

use super::IDLE_PER_HOST;

/// A guarded fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute http(s) URL (or it carries credentials).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The host resolves to an address we refuse to contact.
    #[error("refused: {host} resolves to a private, loopback, link-local or metadata address")]
    Forbidden {
        /// The host.
        host: String,
    },
    /// The name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// More than the allowed redirects.
    #[error("too many redirects (at most {0})")]
    TooManyRedirects(usize),
    /// Network or protocol failure (never includes credentials).
    #[error("request failed: {0}")]
    Http(String),
}

impl FetchError {
    /// A transport error with its causes (e.g. "connection refused"), without the URL.
    pub fn transport(e: reqwest::Error) -> Self {
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        Self::Http(text)
    }
}

/// Addresses never contacted for user-supplied URLs.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            // IPv4-compatible ::a.b.c.d (deprecated) maps too.
            if seg[..6].iter().all(|s| *s == 0) && !v6.is_loopback() && !v6.is_unspecified() {
                return forbidden_v4(Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                ));
            }
            if let Some(v4) = embedded_v4(&seg) {
                return forbidden_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (incl. fd00:ec2::254)
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1) // local-use NAT64 64:ff9b:1::/48
        }
    }
}

/// The IPv4 address an IPv6 translation or tunnel address carries: NAT64 `64:ff9b::/96` (the last 32 bits),
/// 6to4 `2002::/16` (bits 16–48) and Teredo `2001::/32` (the client, bit-inverted in the last 32 bits).
fn embedded_v4(seg: &[u16; 8]) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
        Some(v4(seg[6], seg[7]))
    } else if seg[0] == 0x2002 {
        Some(v4(seg[1], seg[2]))
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        Some(v4(!seg[6], !seg[7]))
    } else {
        None
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // includes 169.254.169.254 (cloud metadata)
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240 // reserved
}

/// The client that reaches `host` only at `addr` (no redirects followed), shared by every request pinned the
/// same way so that its connections are reused: a client per request opened a connection per download.
fn pinned_client(host: &str, addr: SocketAddr) -> Result<reqwest::Client, FetchError> {
    type Pins = HashMap<(String, SocketAddr), reqwest::Client>;
    /// Enough for every provider's result host; past it the cache starts over (a bound, not an eviction policy).
    const MAX_PINS: usize = 64;
    static PINNED: LazyLock<Mutex<Pins>> = LazyLock::new(Mutex::default);
    let key = (host.to_string(), addr);
    if let Some(client) = PINNED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(client.clone());
    }
    let client = crate::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .resolve(host, addr)
        .build()
        .map_err(FetchError::transport)?;
    let mut pins = PINNED.lock().unwrap_or_else(|e| e.into_inner());
    if pins.len() >= MAX_PINS {
        pins.clear();
    }
    pins.insert(key, client.clone());
    Ok(client)
}

/// Makes guarded requests to user-supplied URLs.
#[derive(Debug, Clone)]
pub struct FetchGuard {
    allow_private: bool,
    timeout: Duration,
    max_redirects: usize,
}

impl FetchGuard {
    /// A guard; `allow_private` lifts the address rule (local development and tests only).
    pub fn new(allow_private: bool) -> Self {
        // Said once per process: a guard is made per download, and a 1,000-scene render logged it 1,038 times.
        static WARNED: std::sync::Once = std::sync::Once::new();
        if allow_private {
            WARNED.call_once(|| {
                tracing::warn!(
                    "DEVATAR_ALLOW_PRIVATE_URLS is on: user-supplied URLs may reach private addresses"
                );
            });
        }
        Self {
            allow_private,
            timeout: Duration::from_secs(20),
            max_redirects: 3,
        }
    }

    /// Parses and checks a URL: trimmed, absolute http(s), no userinfo.
    pub fn parse(url: &str) -> Result<Url, FetchError> {
        let url = Url::parse(url.trim()).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl(
                "only http and https URLs are allowed".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::InvalidUrl(
                "URLs with credentials are not allowed".into(),
            ));
        }
        if url.host_str().is_none() {
            return Err(FetchError::InvalidUrl("the URL has no host".into()));
        }
        Ok(url)
    }

    /// Parses `url` and resolves its host: an error when it is not an http(s) URL, does not resolve or resolves
    /// to an address the rule refuses (what a webhook registration checks before storing the URL).
    pub async fn check(&self, url: &str) -> Result<Url, FetchError> {
        let url = Self::parse(url)?;
        self.checked_addr(&url).await?;
        Ok(url)
    }

    /// Resolves the URL's host and returns one address that passes the rule.
    async fn checked_addr(&self, url: &Url) -> Result<SocketAddr, FetchError> {
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        if host.eq_ignore_ascii_case("metadata.google.internal")
            || host.eq_ignore_ascii_case("metadata")
        {
            return Err(FetchError::Forbidden { host });
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| FetchError::Resolve(host.clone()))?
            .collect();
        if addrs.is_empty() {
            return Err(FetchError::Resolve(host));
        }
        if self.allow_private {
            return Ok(addrs[0]);
        }
        // Every address must pass: a name that resolves to both public and internal addresses is refused.
        if addrs.iter().any(|a| is_forbidden_ip(a.ip())) {
            return Err(FetchError::Forbidden { host });
        }
        Ok(addrs[0])
    }

    /// Sends a request with extra headers, following at most 3 redirects, each re-checked, connecting only to
    /// the checked address. Returns the final response (not yet read).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
    ) -> Result<reqwest::Response, FetchError> {
        self.send_body(method, url, headers, Vec::new()).await
    }

    /// Like [`FetchGuard::send`] with a request body. A 301/302/303 redirect turns the request into a GET
    /// without the body; 307/308 repeat it.
    pub async fn send_body(
        &self,
        mut method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        mut body: Vec<u8>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut url = Self::parse(url)?;
        for _ in 0..=self.max_redirects {
            let addr = self.checked_addr(&url).await?;
            let host = url.host_str().unwrap_or_default().to_string();
            let client = pinned_client(&host, addr)?;
            let mut req = client
                .request(method.clone(), url.clone())
                .timeout(self.timeout);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if !body.is_empty() {
                req = req.body(body.clone());
            }
            let resp = req.send().await.map_err(FetchError::transport)?;
            if resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| FetchError::Http("redirect without Location".into()))?;
                url = url
                    .join(location)
                    .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
                url = Self::parse(url.as_str())?;
                if !matches!(
                    resp.status(),
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                ) && method != Method::HEAD
                {
                    method = Method::GET;
                    body.clear();
                }
                continue;
            }
            return Ok(resp);
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "ff02::1",
        ] {
            assert!(
                is_forbidden_ip(ip.parse().unwrap()),
                "{ip} must be forbidden"
            );
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert!(!is_forbidden_ip(ip.parse().unwrap()), "{ip} is public");
        }
    }

    /// Issue 17 item 10: only the NAT64 form of 169.254.169.254 was refused; every NAT64, 6to4 and Teredo
    /// address that carries a private or special IPv4 address is refused now, public ones still pass.
    #[test]
    fn translation_and_tunnel_addresses_carrying_internal_ipv4_are_forbidden() {
        for ip in [
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::192.168.1.1",
            "64:ff9b::100.64.0.1",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
        ] {
            assert!(
                is_forbidden_ip(ip.parse().unwrap()),
                "{ip} must be forbidden"
            );
        }
        for ip in ["64:ff9b::8.8.8.8", "2002:808:808::1"] {
            assert!(!is_forbidden_ip(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn only_plain_http_urls_parse() {
        assert!(FetchGuard::parse("  https://example.com/a.safetensors ").is_ok());
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "https://user:pw@example.com/x",
            "not a url",
            "gopher://x",
        ] {
            assert!(FetchGuard::parse(bad).is_err(), "{bad}");
        }
    }

    /// Downloads from one host share a pinned client, so the second reuses the first one's connection; the
    /// guard's time limit still holds for each request.
    #[tokio::test]
    async fn guarded_requests_to_one_host_reuse_a_connection_and_keep_the_time_limit() {
        let server = crate::net::test_server::CountingServer::start(false).await;
        for path in ["/a.png", "/b.png"] {
            let resp = FetchGuard::new(true)
                .send(Method::GET, &server.url(path), &[])
                .await
                .unwrap();
            assert_eq!(resp.text().await.unwrap(), "ok");
        }
        assert_eq!(server.connections(), 1);

        let silent = crate::net::test_server::CountingServer::start(true).await;
        let mut guard = FetchGuard::new(true);
        guard.timeout = Duration::from_millis(300);
        let err = guard
            .send(Method::GET, &silent.url("/slow.png"), &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn metadata_and_loopback_hosts_are_refused_without_the_flag() {
        let guard = FetchGuard::new(false);
        for url in [
            "http://127.0.0.1:9/x",
            "http://169.254.169.254/latest/meta-data",
            "http://metadata.google.internal/",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            let err = guard.send(Method::GET, url, &[]).await.unwrap_err();
            assert!(matches!(err, FetchError::Forbidden { .. }), "{url}: {err}");
        }
    }
}
