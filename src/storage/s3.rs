//! S3-compatible media storage settings: Cloudflare R2 (`R2_*`) or any S3 endpoint (`DEVATAR_S3_*`).
//!
//! Only this module reads the storage variables; [`crate::storage::objects::MediaConfig`] decides between the
//! local folder and S3. Error messages name variables, never their values when those are credentials.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder};

/// How long presigned URLs live unless `DEVATAR_PRESIGN_TTL_SECS` says otherwise: 6 hours, long enough for a
/// provider job that waits in a queue before it fetches its inputs (PROVIDERS.md §3.7, §5.3).
pub const DEFAULT_PRESIGN_TTL: Duration = Duration::from_secs(6 * 3600);

/// The longest lifetime SigV4 allows for a presigned URL (7 days).
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The variables that select Cloudflare R2; all four are required once any R2 variable is set.
pub const R2_REQUIRED: [&str; 4] = [
    "R2_ACCOUNT_ID",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_BUCKET_NAME",
];

/// Variables that select generic S3 when set (`DEVATAR_S3_BUCKET` is then required).
const S3_TRIGGERS: [&str; 6] = [
    "DEVATAR_S3_BUCKET",
    "DEVATAR_S3_ENDPOINT",
    "DEVATAR_S3_REGION",
    "DEVATAR_S3_ACCESS_KEY_ID",
    "DEVATAR_S3_SECRET_ACCESS_KEY",
    "DEVATAR_S3_PUBLIC_URL",
];

/// The storage configuration in the environment is incomplete or invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Some variables of a set are missing.
    #[error("incomplete {set} media storage configuration: {} not set", .missing.join(", "))]
    Incomplete {
        /// Which set ("Cloudflare R2" or "S3").
        set: &'static str,
        /// The missing variables.
        missing: Vec<&'static str>,
    },
    /// Both the R2 and the generic S3 sets are present.
    #[error(
        "both Cloudflare R2 ({r2} is set) and generic S3 ({s3} is set) media storage are configured; keep one"
    )]
    Conflict {
        /// An R2 variable that is set.
        r2: &'static str,
        /// A `DEVATAR_S3_*` variable that is set.
        s3: &'static str,
    },
    /// A variable has a value we cannot use (the message never repeats a credential).
    #[error("media storage setting {var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Which kind of S3 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Flavor {
    /// Cloudflare R2 (`R2_*` variables).
    R2,
    /// AWS S3 or another S3-compatible server (`DEVATAR_S3_*` variables).
    Generic,
}

/// Connection settings for one S3 bucket. `Debug` redacts the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// R2 or generic S3.
    pub flavor: S3Flavor,
    /// Bucket name.
    pub bucket: String,
    /// Service endpoint without the bucket (`https://<account>.r2.cloudflarestorage.com`); `None` means AWS.
    pub endpoint: Option<String>,
    /// Signing region (`auto` for R2).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Temporary-credential session token (`AWS_SESSION_TOKEN`), if any.
    pub session_token: Option<String>,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`) instead of virtual-hosted (`<bucket>.<host>/<key>`).
    pub path_style: bool,
    /// Allow a plain-HTTP endpoint (local test servers).
    pub allow_http: bool,
    /// Public base URL of the bucket (`R2_PUBLIC_URL`, `DEVATAR_S3_PUBLIC_URL`), without a trailing slash.
    pub public_url: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("flavor", &self.flavor)
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// A variable's trimmed value; empty counts as unset.
fn get(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A boolean variable (`1/true/yes/on`, `0/false/no/off`); `None` when unset.
pub(crate) fn get_bool(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<bool>, ConfigError> {
    match get(lookup, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(Some(false)),
        Some(_) => Err(ConfigError::Invalid {
            var: name,
            reason: "expected 1 or 0".into(),
        }),
    }
}

/// `DEVATAR_PRESIGN_TTL_SECS` (1 s to 7 days), default [`DEFAULT_PRESIGN_TTL`].
pub(crate) fn presign_ttl(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, ConfigError> {
    const VAR: &str = "DEVATAR_PRESIGN_TTL_SECS";
    let Some(v) = get(lookup, VAR) else {
        return Ok(DEFAULT_PRESIGN_TTL);
    };
    match v.parse::<u64>() {
        Ok(secs) if (1..=MAX_PRESIGN_TTL.as_secs()).contains(&secs) => {
            Ok(Duration::from_secs(secs))
        }
        _ => Err(ConfigError::Invalid {
            var: VAR,
            reason: format!(
                "expected whole seconds from 1 to {} (7 days), got {v:?}",
                MAX_PRESIGN_TTL.as_secs()
            ),
        }),
    }
}

/// Checks an http(s) base URL; returns it without a trailing slash. Never echoes the value (it could hold
/// credentials in its user-info part).
fn base_url(var: &'static str, value: &str, allow_http: bool) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        var,
        reason: reason.into(),
    };
    let url = url::Url::parse(value).map_err(|_| invalid("not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(invalid(
                "plain http:// needs DEVATAR_S3_ALLOW_HTTP=1 (local servers only)",
            ));
        }
        _ => return Err(invalid("must start with https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn check_bucket(var: &'static str, bucket: &str) -> Result<(), ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: "a bucket name has 3 to 63 lowercase letters, digits, '-' or '.'".into(),
        })
    }
}

impl S3Config {
    /// Reads the S3 settings through `lookup` (a variable name → its value). `Ok(None)` when no R2 or
    /// `DEVATAR_S3_*` variable is set, i.e. media stay in the local folder.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let r2_set = R2_REQUIRED
            .iter()
            .chain(["R2_PUBLIC_URL"].iter())
            .find(|v| get(lookup, v).is_some());
        let s3_set = S3_TRIGGERS.iter().find(|v| get(lookup, v).is_some());
        match (r2_set, s3_set) {
            (Some(r2), Some(s3)) => Err(ConfigError::Conflict { r2, s3 }),
            (Some(_), None) => Self::r2(lookup).map(Some),
            (None, Some(_)) => Self::generic(lookup).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn r2(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let missing: Vec<&'static str> = R2_REQUIRED
            .into_iter()
            .filter(|v| get(lookup, v).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Incomplete {
                set: "Cloudflare R2",
                missing,
            });
        }
        let var = |name| get(lookup, name).unwrap_or_default();
        let account = var("R2_ACCOUNT_ID");
        if !account.chars().all(|c| c.is_ascii_alphanumeric()) || account.len() > 64 {
            return Err(ConfigError::Invalid {
                var: "R2_ACCOUNT_ID",
                reason:
                    "expected the account id (letters and digits, as shown in the R2 dashboard)"
                        .into(),
            });
        }
        let bucket = var("R2_BUCKET_NAME");
        check_bucket("R2_BUCKET_NAME", &bucket)?;
        let public_url = get(lookup, "R2_PUBLIC_URL")
            .map(|u| base_url("R2_PUBLIC_URL", &u, false))
            .transpose()?;
        Ok(Self {
            flavor: S3Flavor::R2,
            bucket,
            endpoint: Some(format!(
                "https://{}.r2.cloudflarestorage.com",
                account.to_ascii_lowercase()
            )),
            region: "auto".into(),
            access_key_id: var("R2_ACCESS_KEY_ID"),
            secret_access_key: var("R2_SECRET_ACCESS_KEY"),
            session_token: None,
            path_style: get_bool(lookup, "DEVATAR_S3_PATH_STYLE")?.unwrap_or(true),
            allow_http: false,
            public_url,
        })
    }

    fn generic(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let own_keys =
            ["DEVATAR_S3_ACCESS_KEY_ID", "DEVATAR_S3_SECRET_ACCESS_KEY"].map(|v| get(lookup, v));
        let (key_vars, token_var) = if own_keys.iter().any(Option::is_some) {
            (
                ["DEVATAR_S3_ACCESS_KEY_ID", "DEVATAR_S3_SECRET_ACCESS_KEY"],
                None,
            )
        } else {
            (
                ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                Some("AWS_SESSION_TOKEN"),
            )
        };
        let mut missing = Vec::new();
        let bucket = get(lookup, "DEVATAR_S3_BUCKET");
        if bucket.is_none() {
            missing.push("DEVATAR_S3_BUCKET");
        }
        let access_key_id = get(lookup, key_vars[0]);
        let secret_access_key = get(lookup, key_vars[1]);
        match (&access_key_id, &secret_access_key, token_var) {
            (None, None, Some(_)) => missing
                .push("DEVATAR_S3_ACCESS_KEY_ID and DEVATAR_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
            (None, _, _) => missing.push(key_vars[0]),
            (_, None, _) => missing.push(key_vars[1]),
            _ => {}
        }
        let (Some(bucket), Some(access_key_id), Some(secret_access_key)) =
            (bucket, access_key_id, secret_access_key)
        else {
            return Err(ConfigError::Incomplete { set: "S3", missing });
        };
        check_bucket("DEVATAR_S3_BUCKET", &bucket)?;
        let allow_http = get_bool(lookup, "DEVATAR_S3_ALLOW_HTTP")?.unwrap_or(false);
        let endpoint = get(lookup, "DEVATAR_S3_ENDPOINT")
            .map(|e| base_url("DEVATAR_S3_ENDPOINT", &e, allow_http))
            .transpose()?;
        // Custom servers (MinIO, Ceph, R2, s3s…) all take path-style requests; AWS prefers virtual-hosted.
        let path_style = get_bool(lookup, "DEVATAR_S3_PATH_STYLE")?.unwrap_or(endpoint.is_some());
        if let Some(e) = &endpoint
            && !path_style
            && url::Url::parse(e)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
                .is_some_and(|h| h.parse::<IpAddr>().is_ok() || h == "localhost")
        {
            return Err(ConfigError::Invalid {
                var: "DEVATAR_S3_PATH_STYLE",
                reason: "virtual-hosted requests need a DNS name in DEVATAR_S3_ENDPOINT; set DEVATAR_S3_PATH_STYLE=1"
                    .into(),
            });
        }
        let public_url = get(lookup, "DEVATAR_S3_PUBLIC_URL")
            .map(|u| base_url("DEVATAR_S3_PUBLIC_URL", &u, allow_http))
            .transpose()?;
        Ok(Self {
            flavor: S3Flavor::Generic,
            bucket,
            endpoint,
            region: get(lookup, "DEVATAR_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key_id,
            secret_access_key,
            session_token: token_var.and_then(|v| get(lookup, v)),
            path_style,
            allow_http,
            public_url,
        })
    }

    /// The endpoint handed to the S3 client: as configured for path-style requests, with the bucket put in
    /// front of the host for virtual-hosted ones; `None` for AWS's own endpoints.
    pub fn client_endpoint(&self) -> Option<String> {
        let endpoint = self.endpoint.as_deref()?;
        if self.path_style {
            return Some(endpoint.to_string());
        }
        let mut url = url::Url::parse(endpoint).ok()?;
        let host = format!("{}.{}", self.bucket, url.host_str()?);
        url.set_host(Some(&host)).ok()?;
        Some(url.as_str().trim_end_matches('/').to_string())
    }

    /// Builds the S3 client. Timeouts follow PROVIDERS.md §5.4: 10 s to connect, 30 s without reading a byte;
    /// no limit on a whole request, so large downloads are not cut off.
    pub fn build(&self) -> Result<AmazonS3, object_store::Error> {
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            .with_read_timeout(Duration::from_secs(30))
            .with_timeout_disabled()
            .with_allow_http(self.allow_http);
        crate::net::install_tls_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(!self.path_style)
            .with_client_options(client);
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = self.client_endpoint() {
            builder = builder.with_endpoint(endpoint);
        }
        builder.build()
    }

    /// The signer of presigned `GET` URLs for this bucket, addressed the way [`S3Config::build`] addresses it.
    pub fn presigner(&self) -> Result<Presigner, ConfigError> {
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        };
        // The variable the address comes from, for the error message.
        let var = match (self.flavor, &self.endpoint) {
            (S3Flavor::R2, _) => "R2_ACCOUNT_ID",
            (S3Flavor::Generic, Some(_)) => "DEVATAR_S3_ENDPOINT",
            (S3Flavor::Generic, None) => "DEVATAR_S3_REGION",
        };
        let invalid = |reason: String| ConfigError::Invalid { var, reason };
        let endpoint = url::Url::parse(&endpoint).map_err(|e| invalid(e.to_string()))?;
        let style = if self.path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let bucket =
            rusty_s3::Bucket::new(endpoint, style, self.bucket.clone(), self.region.clone())
                .map_err(|e| invalid(format!("cannot address bucket {}: {e}", self.bucket)))?;
        let credentials = match &self.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(
                &self.access_key_id,
                &self.secret_access_key,
                token,
            ),
            None => rusty_s3::Credentials::new(&self.access_key_id, &self.secret_access_key),
        };
        Ok(Presigner {
            bucket,
            credentials,
        })
    }

    /// A short description for logs and `doctor`: flavor and bucket, never credentials.
    pub fn describe(&self) -> String {
        match self.flavor {
            S3Flavor::R2 => format!("Cloudflare R2 bucket {}", self.bucket),
            S3Flavor::Generic => format!(
                "S3 bucket {} at {}",
                self.bucket,
                self.endpoint.as_deref().unwrap_or("AWS")
            ),
        }
    }
}

/// Signs presigned `GET` URLs (SigV4 query authentication) locally, at a time the caller chooses: the same
/// key, lifetime and signing time always give the same URL, so a request that carries one can be repeated
/// byte for byte (Sync's `Idempotency-Key` replays only an identical body). `Debug` hides the credentials.
#[derive(Clone)]
pub struct Presigner {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
}

impl fmt::Debug for Presigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presigner")
            .field("bucket", &self.bucket.name())
            .finish_non_exhaustive()
    }
}

impl Presigner {
    /// A URL that fetches `key` from `signed_at` (whole seconds) until `signed_at + expires`.
    pub fn get_url(&self, key: &str, expires: Duration, signed_at: SystemTime) -> String {
        use rusty_s3::S3Action as _;
        let secs = signed_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let time = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::MAX);
        self.bucket
            .get_object(Some(&self.credentials), key)
            .sign_with_time(expires, &time)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const R2: [(&str, &str); 4] = [
        ("R2_ACCOUNT_ID", "0123abcd"),
        ("R2_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("R2_SECRET_ACCESS_KEY", "s3cr3t-value"),
        ("R2_BUCKET_NAME", "media-bucket"),
    ];

    #[test]
    fn nothing_set_means_local() {
        assert!(S3Config::from_lookup(&lookup(&[])).unwrap().is_none());
        // Stray AWS credentials alone do not move media to S3.
        let aws = lookup(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]);
        assert!(S3Config::from_lookup(&aws).unwrap().is_none());
    }

    #[test]
    fn r2_uses_the_account_endpoint_region_auto_and_path_style() {
        let c = S3Config::from_lookup(&lookup(&R2)).unwrap().unwrap();
        assert_eq!(c.flavor, S3Flavor::R2);
        assert_eq!(
            c.client_endpoint().as_deref(),
            Some("https://0123abcd.r2.cloudflarestorage.com")
        );
        assert_eq!((c.region.as_str(), c.path_style), ("auto", true));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("AKIDEXAMPLE"),
            "{debug}"
        );
        let mut vhost = R2.to_vec();
        vhost.push(("DEVATAR_S3_PATH_STYLE", "0"));
        let c = S3Config::from_lookup(&lookup(&vhost)).unwrap().unwrap();
        assert_eq!(
            c.client_endpoint().as_deref(),
            Some("https://media-bucket.0123abcd.r2.cloudflarestorage.com")
        );
    }

    #[test]
    fn incomplete_and_conflicting_sets_name_the_variables() {
        let err = S3Config::from_lookup(&lookup(&R2[..2]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("R2_SECRET_ACCESS_KEY, R2_BUCKET_NAME") && !err.contains("AKIDEXAMPLE"),
            "{err}"
        );
        let mut both = R2.to_vec();
        both.push(("DEVATAR_S3_BUCKET", "other"));
        let err = S3Config::from_lookup(&lookup(&both))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DEVATAR_S3_BUCKET") && err.contains("R2_"),
            "{err}"
        );
        let err = S3Config::from_lookup(&lookup(&[("DEVATAR_S3_BUCKET", "media")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        let err = S3Config::from_lookup(&lookup(&[
            ("DEVATAR_S3_BUCKET", "media"),
            ("DEVATAR_S3_ACCESS_KEY_ID", "id"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("DEVATAR_S3_SECRET_ACCESS_KEY not set"),
            "{err}"
        );
    }

    #[test]
    fn generic_s3_defaults_and_checks() {
        let base = [
            ("DEVATAR_S3_BUCKET", "media"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let aws = S3Config::from_lookup(&lookup(&base)).unwrap().unwrap();
        assert_eq!(
            (aws.region.as_str(), aws.path_style, aws.endpoint.as_deref()),
            ("us-east-1", false, None)
        );
        let mut local = base.to_vec();
        local.push(("DEVATAR_S3_ENDPOINT", "http://127.0.0.1:9000/"));
        let err = S3Config::from_lookup(&lookup(&local))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEVATAR_S3_ALLOW_HTTP"), "{err}");
        local.push(("DEVATAR_S3_ALLOW_HTTP", "1"));
        let c = S3Config::from_lookup(&lookup(&local)).unwrap().unwrap();
        assert!(c.path_style && c.allow_http);
        assert_eq!(
            c.client_endpoint().as_deref(),
            Some("http://127.0.0.1:9000")
        );
        local.push(("DEVATAR_S3_PATH_STYLE", "0"));
        let err = S3Config::from_lookup(&lookup(&local))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEVATAR_S3_PATH_STYLE=1"), "{err}");
        let creds = lookup(&[
            ("DEVATAR_S3_BUCKET", "media"),
            ("DEVATAR_S3_ENDPOINT", "https://user:pw@example.com"),
            ("DEVATAR_S3_ACCESS_KEY_ID", "id"),
            ("DEVATAR_S3_SECRET_ACCESS_KEY", "secret"),
        ]);
        let err = S3Config::from_lookup(&creds).unwrap_err().to_string();
        assert!(err.contains("credentials") && !err.contains("pw@"), "{err}");
    }

    #[test]
    fn presign_ttl_defaults_to_six_hours_and_is_bounded() {
        assert_eq!(presign_ttl(&lookup(&[])).unwrap(), DEFAULT_PRESIGN_TTL);
        let ttl = presign_ttl(&lookup(&[("DEVATAR_PRESIGN_TTL_SECS", "900")])).unwrap();
        assert_eq!(ttl, Duration::from_secs(900));
        for bad in ["0", "604801", "6h", "-1"] {
            assert!(presign_ttl(&lookup(&[("DEVATAR_PRESIGN_TTL_SECS", bad)])).is_err());
        }
    }

    /// AWS's documented presigned-URL example (SigV4 "Authenticating Requests: Using Query Parameters"):
    /// the same signature, and the same URL whenever the signing time is the same.
    #[test]
    fn presigned_urls_match_the_aws_example_and_depend_only_on_the_signing_time() {
        let config = S3Config {
            flavor: S3Flavor::Generic,
            bucket: "examplebucket".into(),
            endpoint: Some("https://s3.amazonaws.com".into()),
            region: "us-east-1".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            path_style: false,
            allow_http: false,
            public_url: None,
        };
        let signer = config.presigner().unwrap();
        assert!(!format!("{signer:?}").contains("EXAMPLEKEY"));
        let at = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let day = Duration::from_secs(86_400);
        let url = signer.get_url("test.txt", day, at);
        assert!(
            url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Date=20130524T000000Z"), "{url}");
        assert!(
            url.contains(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
        assert_eq!(url, signer.get_url("test.txt", day, at));
        assert_ne!(
            url,
            signer.get_url("test.txt", day, at + Duration::from_secs(1))
        );
        let path_style = S3Config {
            path_style: true,
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..config
        };
        let url = path_style
            .presigner()
            .unwrap()
            .get_url("media/ab/x.png", day, at);
        assert!(
            url.starts_with("http://127.0.0.1:9000/examplebucket/media/ab/x.png?"),
            "{url}"
        );
    }
}
