//! Fault injection: the `--fault SPEC` grammar, its parsed form and the live rule set.
//!
//! # Grammar
//!
//! ```text
//! SPEC     := TARGET '=' ACTION [ 'x' COUNT ]
//! TARGET   := PROVIDER '.' ENDPOINT | 'media'
//! PROVIDER := 'elevenlabs' | 'fal' | 'kling' | 'sync' | '*'
//! ENDPOINT := 'tts' | 'voices' | 'submit' | 'status' | 'result' | 'cancel' | '*'
//! COUNT    := how many matching calls (or jobs, for job fates) the rule affects; omitted = all of them
//! ```
//!
//! A counted rule is shared by every call it matches: `*.submit=429x2` answers the next two submits of any
//! provider with 429. Rules are checked after authentication, so a bad key still gets its 401. Rules that
//! decide an answer queue up in the order given: one error (or media substitute) per call, so
//! `429x1` + `500x1` answer 429, then 500; modifiers such as `slow`, `drop` or `malformed` combine with it.
//! Likewise one outcome fate per job (`REJECTEDx1` + `stallx1`: the next job is rejected, the one after stalls),
//! while presentation fates (`url_object`, `extra_fields`, …) combine.
//!
//! # Actions
//!
//! Per call, on any endpoint (the error body is always the provider's own shape):
//!
//! | Action | Effect | §6 rows |
//! |---|---|---|
//! | `NNN` (e.g. `429`, `500`, `502`, `503`, `504`, `401`, `403`, `408`) | that HTTP status; a 429 is the *rate* kind (EL `system_busy`, Kling 1302, Sync `rate_limit_exceeded`) | 1, 2, 4 |
//! | `429slot` | the *concurrency* kind of 429 (EL `too_many_concurrent_requests`, Kling 1303, Sync plan concurrency) | 2 |
//! | `…retry-after=S` / `…retry-after-date=S` suffix | adds `Retry-After` as delta seconds / as an HTTP-date S s ahead | 1 |
//! | `quota` | EL 401 `quota_exceeded`, Kling 429/1102, Sync 402, Fal 403 "Exhausted balance" | 3 |
//! | `NNNN` (Kling only, e.g. `1303`, `1004`, `1301`, `5001`) | that Kling business code with its HTTP status | 2, 3, 12, 20 |
//! | `drop` | runs the call (a submit creates its job), then closes the connection without answering | 5 |
//! | `slow=S` | answers only after S seconds (real seconds, not scaled) | 6 |
//! | `trickle=S` | sends the body in small pieces spread over S seconds | 6 |
//! | `malformed` | 200-style answer with its JSON body cut in half | 13 |
//! | `html` / `html502` | an HTML page with 200 / with 502 | 13 |
//! | `empty` | the normal status with an empty body | 13 |
//! | `wrong_content_type` | the normal body labelled `text/plain` | 13 |
//!
//! Endpoint-specific, per call:
//!
//! | Action | Target | Effect | §6 rows |
//! |---|---|---|---|
//! | `alias` | `fal.submit` | `requestId` instead of `request_id` | 9 |
//! | `outcome_unknown` | `sync.submit` | creates the job, answers 409 `IDEMPOTENCY_OUTCOME_UNKNOWN` with its `generationId` | 22 |
//! | `audio_too_long` | `sync.submit` | 402 "audio exceeds the plan's duration limit" | 19 |
//! | `dup_existing` / `dup_reject` | `kling.submit` | a reused `external_task_id` returns the existing task / is rejected (overrides the config) | 21 |
//! | `ignored` | `fal.cancel` | answers `CANCELLATION_REQUESTED` but the job runs on | 27 |
//! | `identity-drift` | `fal.submit` | the next Flux images with a mapped LoRA (see the `faces` module) show another person; shorthand `identity-drift:N` = `fal.submit=identity-driftxN` | – |
//! | `truncate` | `media` | sends half the bytes under the full `Content-Length`, then closes | 14 |
//! | `html` / `json` | `media` | 200 with an HTML page / a JSON error instead of the media | 15 |
//! | `expired` | `media` | 403 with the S3 XML "Request has expired" | 16 |
//! | `ignore_range` / `416` / `redirect` | `media` | Range ignored (200 full body) / 416 / 302 to the same file | 25 |
//! | `no_length` / `oversize` | `media` | chunked without `Content-Length` / an endless body past any cap | 26 |
//!
//! Job fates: actions on a `.status` or `.result` target other than the per-call ones above are consumed when a
//! job is *created* (the count is a number of jobs) and stick to that job:
//!
//! | Action | Effect | §6 rows |
//! |---|---|---|
//! | `stall` | the job never leaves Fal `IN_QUEUE` / Kling `submitted` / Sync `PENDING` | 7 |
//! | `no_output` (aliases `COMPLETED_no_url`, `succeed_no_videos`) | Sync `COMPLETED` without URL, Kling `succeed` with `videos:[]`, Fal result without its media key | 8 |
//! | `error` | Fal: `COMPLETED`, then the result call fails (500, `X-Fal-Error-Type: runner_disconnected`) | 8, 12 |
//! | `output_url` / `media_url_only` / `legacy_url_only` | Sync: only `output_url` / only `outputMediaUrl` / only `outputUrl` | 9 |
//! | `url_object` / `url_null` | Sync: `outputUrl` is `{}` / `null` (the URL stays in `outputMediaUrl`) | 10 |
//! | `extra_fields` / `numeric_duration` | unknown fields in every answer / Kling `duration` as a number | 10 |
//! | `training_failed` | Fal training: `COMPLETED`, then the result answers 422 `Training failed: …` (Fal's reason) | – |
//! | `regress` | the status goes back one step once (PROCESSING → PENDING); Kling `updated_at` < `created_at` | 28 |
//! | any other word, e.g. `REJECTED`, `FAILED`, `CANCELED`, `TIMED_OUT`, `COMPLETE`, `failed`, `Succeed`, `WEIRD` | the literal final status the job ends with (failures carry `error`/`error_code` or `task_status_msg`) | 11, 12 |
//!
//! Always on, without a fault: 401s (auth), Kling 1003/1004 (row 20), 422s for contract breaks (rows 17, 18),
//! EL `max_character_limit_exceeded` (row 19), Sync idempotency replay and conflict (row 22), Fal sub-path
//! ids (row 23), Fal cancel `ALREADY_COMPLETED`/`NOT_FOUND` (row 27), Sync result-token 403 (row 16).
//! Not reproduced: webhooks (row 24).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::FakesError;

/// A provider the fakes imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// ElevenLabs speech.
    ElevenLabs,
    /// The Fal queue API.
    Fal,
    /// Kling's official API.
    Kling,
    /// Sync Labs' direct API.
    Sync,
}

impl Provider {
    /// The name used in fault specs and `/__stats` keys.
    pub fn name(self) -> &'static str {
        match self {
            Provider::ElevenLabs => "elevenlabs",
            Provider::Fal => "fal",
            Provider::Kling => "kling",
            Provider::Sync => "sync",
        }
    }

    fn endpoints(self) -> &'static [Endpoint] {
        match self {
            Provider::ElevenLabs => &[Endpoint::Tts, Endpoint::Voices],
            Provider::Fal => &[
                Endpoint::Submit,
                Endpoint::Status,
                Endpoint::Result,
                Endpoint::Cancel,
            ],
            Provider::Kling | Provider::Sync => &[Endpoint::Submit, Endpoint::Status],
        }
    }
}

/// An endpoint class a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Speech synthesis (every ElevenLabs text-to-speech path).
    Tts,
    /// Voice listing and lookup.
    Voices,
    /// A job-creating request.
    Submit,
    /// A job status query.
    Status,
    /// A job result query (Fal).
    Result,
    /// A job cancellation (Fal).
    Cancel,
}

impl Endpoint {
    /// The name used in fault specs and `/__stats` keys.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Tts => "tts",
            Endpoint::Voices => "voices",
            Endpoint::Submit => "submit",
            Endpoint::Status => "status",
            Endpoint::Result => "result",
            Endpoint::Cancel => "cancel",
        }
    }
}

/// What a fault rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    /// Provider API calls; `None` is the `*` wildcard.
    Api {
        /// The provider, or any.
        provider: Option<Provider>,
        /// The endpoint, or any.
        endpoint: Option<Endpoint>,
    },
    /// Downloads of result media (`/__media/…` and Sync result URLs).
    Media,
}

impl FaultTarget {
    fn matches(&self, provider: Provider, endpoint: Endpoint) -> bool {
        match self {
            FaultTarget::Api {
                provider: p,
                endpoint: e,
            } => p.is_none_or(|p| p == provider) && e.is_none_or(|e| e == endpoint),
            FaultTarget::Media => false,
        }
    }

    fn could_be(&self, provider: Provider, endpoint: Endpoint) -> bool {
        self.matches(provider, endpoint) && provider.endpoints().contains(&endpoint)
    }
}

/// How a `Retry-After` header is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryAfter {
    /// Delta seconds.
    Seconds(u64),
    /// An HTTP-date this many seconds ahead.
    Date(u64),
}

/// The flavour of an injected error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The status code's usual meaning (a 429 is a rate limit).
    Plain,
    /// A 429 meaning "concurrency slots are full".
    Slot,
    /// Quota or billing exhausted.
    Quota,
    /// Sync: audio longer than the plan allows (402).
    AudioTooLong,
    /// An HTML page instead of JSON.
    Html,
}

/// An error answer to inject.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedError {
    /// HTTP status.
    pub status: u16,
    /// Flavour.
    pub kind: ErrorKind,
    /// Kling business code, when one was asked for.
    pub kling_code: Option<u32>,
    /// Optional `Retry-After`.
    pub retry_after: Option<RetryAfter>,
}

/// A per-job fate, fixed when the job is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFate {
    /// Never advance past the first state.
    Stall,
    /// Complete without any output URL.
    NoOutput,
    /// Fal: complete, then fail the result call.
    ResultError,
    /// Sync: only the snake-case `output_url` field.
    SnakeUrl,
    /// Sync: only `outputMediaUrl`.
    MediaUrlOnly,
    /// Sync: only `outputUrl`.
    LegacyUrlOnly,
    /// Sync: `outputUrl: {}`.
    UrlObject,
    /// Sync: `outputUrl: null`.
    UrlNull,
    /// Unknown fields in every answer about the job.
    ExtraFields,
    /// Kling: `duration` as a JSON number.
    NumericDuration,
    /// The reported status steps back once; Kling `updated_at` before `created_at`.
    Regress,
    /// Fal training: complete, then answer the result with Fal's training failure (422).
    TrainingFailed,
    /// End with this literal status string.
    Status(String),
}

/// One injected behaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with an error instead of running the call.
    Error(InjectedError),
    /// Run the call, then close the connection without answering.
    Drop,
    /// Delay the answer.
    Slow(Duration),
    /// Spread the body over this long.
    Trickle(Duration),
    /// Cut the JSON body in half.
    Malformed,
    /// Replace the body with an HTML page (status 200).
    Html,
    /// Empty body.
    Empty,
    /// Label the body `text/plain`.
    WrongContentType,
    /// Fal submit: `requestId` instead of `request_id`.
    Alias,
    /// Sync submit: create the job, answer `IDEMPOTENCY_OUTCOME_UNKNOWN`.
    OutcomeUnknown,
    /// Kling submit: a reused `external_task_id` returns the existing task.
    DuplicateReturnsExisting,
    /// Kling submit: a reused `external_task_id` is rejected.
    DuplicateRejected,
    /// Fal cancel: acknowledge but keep running.
    CancelIgnored,
    /// Fal Flux: the image shows another person than its LoRA stands for (counted per image, taken at submit).
    IdentityDrift,
    /// Media: half the bytes under the full `Content-Length`.
    Truncate,
    /// Media: a JSON error body with 200.
    MediaJson,
    /// Media: 403 expired (S3 XML).
    Expired,
    /// Media: ignore `Range`.
    IgnoreRange,
    /// Media: 416.
    RangeNotSatisfiable,
    /// Media: 302 to the same file.
    Redirect,
    /// Media: no `Content-Length`.
    NoLength,
    /// Media: an endless body.
    Oversize,
    /// A per-job fate (consumed at job creation).
    Fate(JobFate),
}

impl FaultAction {
    /// Whether it is taken when a job is created rather than per call (job fates, identity drift).
    fn is_fate(&self) -> bool {
        matches!(self, FaultAction::Fate(_) | FaultAction::IdentityDrift)
    }

    /// Whether it decides the whole answer (so only one such rule applies per call).
    fn is_decisive(&self) -> bool {
        !matches!(
            self,
            FaultAction::Drop
                | FaultAction::Slow(_)
                | FaultAction::Trickle(_)
                | FaultAction::Malformed
                | FaultAction::Empty
                | FaultAction::WrongContentType
                | FaultAction::IgnoreRange
                | FaultAction::Fate(_)
        )
    }
}

impl JobFate {
    /// Whether it decides how the job ends (so only one such fate applies per job).
    fn is_outcome(&self) -> bool {
        matches!(
            self,
            JobFate::Stall
                | JobFate::NoOutput
                | JobFate::ResultError
                | JobFate::TrainingFailed
                | JobFate::Status(_)
        )
    }
}

/// One parsed `--fault` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// What it applies to.
    pub target: FaultTarget,
    /// What it does.
    pub action: FaultAction,
    /// How many calls (or jobs) it affects; `None` = unlimited.
    pub count: Option<u32>,
    raw: String,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for FaultSpec {
    type Err = FakesError;

    fn from_str(spec: &str) -> Result<Self, FakesError> {
        parse(spec.trim()).map_err(|reason| FakesError::BadFault {
            spec: spec.to_string(),
            reason,
        })
    }
}

fn parse_provider(s: &str) -> Result<Option<Provider>, String> {
    Ok(Some(match s {
        "*" => return Ok(None),
        "elevenlabs" | "el" => Provider::ElevenLabs,
        "fal" => Provider::Fal,
        "kling" => Provider::Kling,
        "sync" | "synclabs" => Provider::Sync,
        other => {
            return Err(format!(
                "unknown provider `{other}` (expected elevenlabs, fal, kling, sync or *)"
            ));
        }
    }))
}

fn parse_endpoint(s: &str) -> Result<Option<Endpoint>, String> {
    Ok(Some(match s {
        "*" => return Ok(None),
        "tts" => Endpoint::Tts,
        "voices" => Endpoint::Voices,
        "submit" => Endpoint::Submit,
        "status" => Endpoint::Status,
        "result" => Endpoint::Result,
        "cancel" => Endpoint::Cancel,
        other => {
            return Err(format!(
                "unknown endpoint `{other}` (expected tts, voices, submit, status, result, cancel or *)"
            ));
        }
    }))
}

fn parse_secs(s: &str, what: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("{what} needs whole seconds, got `{s}`"))
}

fn parse_error(action: &str) -> Result<Option<InjectedError>, String> {
    let digits = action.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Ok(None);
    }
    let (code, mut rest) = action.split_at(digits);
    let code: u32 = code
        .parse()
        .map_err(|_| format!("bad status code `{code}`"))?;
    let mut err = match digits {
        3 if (400..=599).contains(&code) => InjectedError {
            status: code as u16,
            kind: ErrorKind::Plain,
            kling_code: None,
            retry_after: None,
        },
        4 if (1000..=5999).contains(&code) => InjectedError {
            status: kling_http_status(code),
            kind: ErrorKind::Plain,
            kling_code: Some(code),
            retry_after: None,
        },
        _ => {
            return Err(format!(
                "`{code}` is neither an HTTP error status (400-599) nor a Kling code (1000-5999)"
            ));
        }
    };
    if let Some(r) = rest.strip_prefix("slot") {
        if err.status != 429 {
            return Err("`slot` only applies to 429".into());
        }
        err.kind = ErrorKind::Slot;
        rest = r;
    }
    rest = rest.trim_start_matches([':', ',']);
    if let Some(s) = rest.strip_prefix("retry-after-date=") {
        err.retry_after = Some(RetryAfter::Date(parse_secs(s, "retry-after-date")?));
    } else if let Some(s) = rest.strip_prefix("retry-after=") {
        err.retry_after = Some(RetryAfter::Seconds(parse_secs(s, "retry-after")?));
    } else if !rest.is_empty() {
        return Err(format!(
            "unexpected `{rest}` after the status code (expected slot, retry-after=S or retry-after-date=S)"
        ));
    }
    Ok(Some(err))
}

/// The HTTP status Kling pairs with one of its business codes.
pub(crate) fn kling_http_status(code: u32) -> u16 {
    match code {
        1000..=1099 => 401,
        1100..=1102 => 429,
        1103 => 403,
        1203 => 404,
        1200..=1299 => 400,
        1300 | 1301 => 400,
        1302..=1399 => 429,
        5001 => 503,
        5002 => 504,
        _ => 500,
    }
}

fn split_count(s: &str) -> Result<(&str, Option<u32>), String> {
    if let Some(pos) = s.rfind('x') {
        let (head, tail) = (&s[..pos], &s[pos + 1..]);
        if !head.is_empty() && !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit()) {
            let n: u32 = tail.parse().map_err(|_| format!("bad count `{tail}`"))?;
            if n == 0 {
                return Err("a count must be at least 1".into());
            }
            return Ok((head, Some(n)));
        }
    }
    Ok((s, None))
}

fn parse(spec: &str) -> Result<FaultSpec, String> {
    if let Some(n) = spec.strip_prefix("identity-drift:") {
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("identity-drift needs a count of at least 1, got `{n}`"))?;
        return Ok(FaultSpec {
            target: FaultTarget::Api {
                provider: Some(Provider::Fal),
                endpoint: Some(Endpoint::Submit),
            },
            action: FaultAction::IdentityDrift,
            count: Some(n),
            raw: spec.to_string(),
        });
    }
    let (target, action) = spec
        .split_once('=')
        .ok_or("expected TARGET=ACTION, e.g. kling.submit=429x2")?;
    let target = if target == "media" {
        FaultTarget::Media
    } else {
        let (p, e) = target
            .split_once('.')
            .ok_or_else(|| format!("target `{target}` must be PROVIDER.ENDPOINT or media"))?;
        let provider = parse_provider(p)?;
        let endpoint = parse_endpoint(e)?;
        let t = FaultTarget::Api { provider, endpoint };
        let possible = [
            Provider::ElevenLabs,
            Provider::Fal,
            Provider::Kling,
            Provider::Sync,
        ]
        .iter()
        .any(|p| p.endpoints().iter().any(|e| t.could_be(*p, *e)));
        if !possible {
            return Err(format!("`{target}` matches no endpoint of any provider"));
        }
        t
    };
    let (action_text, count) = split_count(action)?;
    if action_text.is_empty() {
        return Err("empty action".into());
    }
    let action = parse_action(&target, action_text)?;
    Ok(FaultSpec {
        target,
        action,
        count,
        raw: spec.to_string(),
    })
}

fn endpoint_of(target: &FaultTarget) -> (Option<Provider>, Option<Endpoint>) {
    match target {
        FaultTarget::Api { provider, endpoint } => (*provider, *endpoint),
        FaultTarget::Media => (None, None),
    }
}

/// Media download faults by name.
const MEDIA_ACTIONS: &[(&str, FaultAction)] = &[
    ("truncate", FaultAction::Truncate),
    ("html", FaultAction::Html),
    ("json", FaultAction::MediaJson),
    ("expired", FaultAction::Expired),
    ("ignore_range", FaultAction::IgnoreRange),
    ("416", FaultAction::RangeNotSatisfiable),
    ("redirect", FaultAction::Redirect),
    ("no_length", FaultAction::NoLength),
    ("oversize", FaultAction::Oversize),
    ("empty", FaultAction::Empty),
    ("wrong_content_type", FaultAction::WrongContentType),
    ("drop", FaultAction::Drop),
];

/// Per-call faults any API target accepts, by name.
const CALL_ACTIONS: &[(&str, FaultAction)] = &[
    (
        "quota",
        FaultAction::Error(InjectedError {
            status: 0,
            kind: ErrorKind::Quota,
            kling_code: None,
            retry_after: None,
        }),
    ),
    (
        "html502",
        FaultAction::Error(InjectedError {
            status: 502,
            kind: ErrorKind::Html,
            kling_code: None,
            retry_after: None,
        }),
    ),
    ("drop", FaultAction::Drop),
    ("malformed", FaultAction::Malformed),
    ("html", FaultAction::Html),
    ("empty", FaultAction::Empty),
    ("wrong_content_type", FaultAction::WrongContentType),
];

/// Per-call faults only one endpoint accepts: (name, provider, endpoint, the target as named in the error, action).
const ENDPOINT_ACTIONS: &[(&str, Provider, Endpoint, &str, FaultAction)] = &[
    (
        "alias",
        Provider::Fal,
        Endpoint::Submit,
        "fal.submit",
        FaultAction::Alias,
    ),
    (
        "outcome_unknown",
        Provider::Sync,
        Endpoint::Submit,
        "sync.submit",
        FaultAction::OutcomeUnknown,
    ),
    (
        "audio_too_long",
        Provider::Sync,
        Endpoint::Submit,
        "sync.submit",
        FaultAction::Error(InjectedError {
            status: 402,
            kind: ErrorKind::AudioTooLong,
            kling_code: None,
            retry_after: None,
        }),
    ),
    (
        "dup_existing",
        Provider::Kling,
        Endpoint::Submit,
        "kling.submit",
        FaultAction::DuplicateReturnsExisting,
    ),
    (
        "dup_reject",
        Provider::Kling,
        Endpoint::Submit,
        "kling.submit",
        FaultAction::DuplicateRejected,
    ),
    (
        "ignored",
        Provider::Fal,
        Endpoint::Cancel,
        "fal.cancel",
        FaultAction::CancelIgnored,
    ),
    (
        "identity-drift",
        Provider::Fal,
        Endpoint::Submit,
        "fal.submit",
        FaultAction::IdentityDrift,
    ),
];

/// Job fates by name (with their aliases), other than a literal final status.
const FATES: &[(&str, JobFate)] = &[
    ("stall", JobFate::Stall),
    ("no_output", JobFate::NoOutput),
    ("completed_no_url", JobFate::NoOutput),
    ("succeed_no_videos", JobFate::NoOutput),
    ("error", JobFate::ResultError),
    ("output_url", JobFate::SnakeUrl),
    ("media_url_only", JobFate::MediaUrlOnly),
    ("legacy_url_only", JobFate::LegacyUrlOnly),
    ("url_object", JobFate::UrlObject),
    ("url_null", JobFate::UrlNull),
    ("extra_fields", JobFate::ExtraFields),
    ("numeric_duration", JobFate::NumericDuration),
    ("regress", JobFate::Regress),
    ("training_failed", JobFate::TrainingFailed),
];

/// The entry of a by-name table called `name`.
fn lookup<T: Clone>(table: &[(&str, T)], name: &str) -> Option<T> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

/// `Err("`text` only applies to what")` unless `ok`.
fn require(ok: bool, text: &str, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("`{text}` only applies to {what}"))
    }
}

/// `slow=S` and `trickle=S` (any target); `None` for other actions.
fn parse_timing(lower: &str) -> Result<Option<FaultAction>, String> {
    Ok(if let Some(s) = lower.strip_prefix("slow=") {
        Some(FaultAction::Slow(Duration::from_secs(parse_secs(
            s, "slow",
        )?)))
    } else if let Some(s) = lower.strip_prefix("trickle=") {
        Some(FaultAction::Trickle(Duration::from_secs(parse_secs(
            s, "trickle",
        )?)))
    } else {
        None
    })
}

/// An action on the `media` target.
fn parse_media_action(text: &str, lower: &str) -> Result<FaultAction, String> {
    if let Some(a) = lookup(MEDIA_ACTIONS, lower) {
        return Ok(a);
    }
    if let Some(a) = parse_timing(lower)? {
        return Ok(a);
    }
    if let Some(e) = parse_error(lower)? {
        return Ok(FaultAction::Error(e));
    }
    Err(format!(
        "unknown media action `{text}` (truncate, html, json, expired, ignore_range, 416, redirect, \
         no_length, oversize, empty, wrong_content_type, drop, slow=S, trickle=S, or a status code)"
    ))
}

/// A status-code action on an API target: 4-digit Kling codes need a kling target, and the quota and
/// concurrency codes take their error kinds.
fn api_error(
    mut e: InjectedError,
    provider: Option<Provider>,
    text: &str,
) -> Result<InjectedError, String> {
    if e.kling_code.is_some() {
        require(
            provider == Some(Provider::Kling),
            text,
            "kling targets (4-digit codes)",
        )?;
        if matches!(e.kling_code, Some(1100..=1102)) {
            e.kind = ErrorKind::Quota;
        }
        if e.kling_code == Some(1303) {
            e.kind = ErrorKind::Slot;
        }
    }
    Ok(e)
}

/// The action half of a spec, checked against its target.
fn parse_action(target: &FaultTarget, text: &str) -> Result<FaultAction, String> {
    let (provider, endpoint) = endpoint_of(target);
    let lower = text.to_ascii_lowercase();
    if *target == FaultTarget::Media {
        return parse_media_action(text, &lower);
    }
    if let Some(e) = parse_error(&lower)? {
        return Ok(FaultAction::Error(api_error(e, provider, text)?));
    }
    if let Some(a) = lookup(CALL_ACTIONS, &lower) {
        return Ok(a);
    }
    if let Some((_, p, e, what, a)) = ENDPOINT_ACTIONS.iter().find(|row| row.0 == lower) {
        require(provider == Some(*p) && endpoint == Some(*e), text, what)?;
        return Ok(a.clone());
    }
    if let Some(f) = lookup(FATES, &lower) {
        let status_like = matches!(endpoint, Some(Endpoint::Status) | Some(Endpoint::Result));
        require(status_like, text, "status or result targets (job fates)")?;
        return Ok(FaultAction::Fate(f));
    }
    if let Some(a) = parse_timing(&lower)? {
        return Ok(a);
    }
    if endpoint == Some(Endpoint::Status)
        && text.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return Ok(FaultAction::Fate(JobFate::Status(text.to_string())));
    }
    Err(format!(
        "unknown action `{text}` (see `devatar fakes --help` and the fakes module docs)"
    ))
}

struct Rule {
    spec: FaultSpec,
    remaining: Option<u32>,
}

impl Rule {
    fn live(&self) -> bool {
        self.remaining.is_none_or(|n| n > 0)
    }

    fn spend(&mut self) {
        if let Some(n) = self.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
    }
}

/// The live rules, with what is left of each count.
#[derive(Default)]
pub(crate) struct FaultSet {
    rules: Vec<Rule>,
}

impl FaultSet {
    pub(crate) fn new(specs: &[FaultSpec]) -> Self {
        let mut set = Self::default();
        set.replace(specs);
        set
    }

    pub(crate) fn replace(&mut self, specs: &[FaultSpec]) {
        self.rules = specs
            .iter()
            .map(|s| Rule {
                spec: s.clone(),
                remaining: s.count,
            })
            .collect();
    }

    pub(crate) fn add(&mut self, spec: FaultSpec) {
        self.rules.push(Rule {
            remaining: spec.count,
            spec,
        });
    }

    /// The live rules as `(spec, remaining)`.
    pub(crate) fn describe(&self) -> Vec<(String, Option<u32>)> {
        self.rules
            .iter()
            .map(|r| (r.spec.raw.clone(), r.remaining))
            .collect()
    }

    /// Per-call actions for one call, spending their counts. Rules are taken in order; of the rules that
    /// decide the answer (errors and media substitutes) only the first live one applies, so
    /// `429x1` + `500x1` answer 429 then 500. Modifiers (`slow`, `drop`, `malformed`, …) combine.
    pub(crate) fn take_call(&mut self, provider: Provider, endpoint: Endpoint) -> Vec<FaultAction> {
        self.take(|t| t.matches(provider, endpoint))
    }

    /// Per-call actions for one media download.
    pub(crate) fn take_media(&mut self) -> Vec<FaultAction> {
        self.take(|t| *t == FaultTarget::Media)
    }

    fn take(&mut self, matches: impl Fn(&FaultTarget) -> bool) -> Vec<FaultAction> {
        let mut out = Vec::new();
        let mut decided = false;
        for r in &mut self.rules {
            if !r.live() || r.spec.action.is_fate() || !matches(&r.spec.target) {
                continue;
            }
            let decisive = r.spec.action.is_decisive();
            if decisive && decided {
                continue;
            }
            decided |= decisive;
            r.spend();
            out.push(r.spec.action.clone());
        }
        out
    }

    /// Whether the Flux image being created now drifts to another person, spending one count of the first live
    /// `identity-drift` rule.
    pub(crate) fn take_drift(&mut self) -> bool {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| r.live() && r.spec.action == FaultAction::IdentityDrift);
        rule.map(Rule::spend).is_some()
    }

    /// The fates of a job being created now, spending their counts. Of the outcome fates (`stall`,
    /// `no_output`, `error`, literal statuses) only the first live one applies to a job, so
    /// `REJECTEDx1` + `stallx1` reject one job and stall the next; presentation fates combine.
    pub(crate) fn take_fates(&mut self, provider: Provider) -> Vec<JobFate> {
        let mut out = Vec::new();
        let mut decided = false;
        for r in &mut self.rules {
            if !r.live() {
                continue;
            }
            if let FaultAction::Fate(f) = &r.spec.action
                && (r.spec.target.could_be(provider, Endpoint::Status)
                    || r.spec.target.could_be(provider, Endpoint::Result))
            {
                let outcome = f.is_outcome();
                if outcome && decided {
                    continue;
                }
                decided |= outcome;
                out.push(f.clone());
                r.spend();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FaultSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_counts_codes_and_retry_after() {
        let f = p("kling.submit=429x2");
        assert_eq!(f.count, Some(2));
        assert!(matches!(
            f.action,
            FaultAction::Error(InjectedError {
                status: 429,
                kind: ErrorKind::Plain,
                ..
            })
        ));
        let f = p("*.submit=429retry-after=2");
        assert_eq!(f.count, None);
        assert!(matches!(
            f.action,
            FaultAction::Error(InjectedError {
                retry_after: Some(RetryAfter::Seconds(2)),
                ..
            })
        ));
        let f = p("elevenlabs.tts=429slotretry-after-date=3x1");
        assert!(matches!(
            f.action,
            FaultAction::Error(InjectedError {
                kind: ErrorKind::Slot,
                retry_after: Some(RetryAfter::Date(3)),
                ..
            })
        ));
        let f = p("kling.submit=1303x3");
        assert!(matches!(
            f.action,
            FaultAction::Error(InjectedError {
                status: 429,
                kling_code: Some(1303),
                kind: ErrorKind::Slot,
                ..
            })
        ));
    }

    #[test]
    fn parses_fates_and_literals() {
        assert_eq!(
            p("sync.status=REJECTED").action,
            FaultAction::Fate(JobFate::Status("REJECTED".into()))
        );
        assert_eq!(
            p("sync.status=COMPLETED_no_url").action,
            FaultAction::Fate(JobFate::NoOutput)
        );
        assert_eq!(
            p("fal.status=stall").action,
            FaultAction::Fate(JobFate::Stall)
        );
        assert_eq!(p("media=truncate").action, FaultAction::Truncate);
        assert_eq!(p("sync.submit=drop").action, FaultAction::Drop);
    }

    #[test]
    fn identity_drift_is_counted_per_image_in_both_spellings() {
        for spec in ["identity-drift:2", "fal.submit=identity-driftx2"] {
            let mut set = FaultSet::new(&[p(spec)]);
            assert!(
                set.take_call(Provider::Fal, Endpoint::Submit).is_empty(),
                "{spec}"
            );
            assert!(set.take_drift() && set.take_drift(), "{spec}");
            assert!(!set.take_drift(), "{spec}");
        }
        assert!("identity-drift:0".parse::<FaultSpec>().is_err());
        assert!("kling.submit=identity-drift".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "kling.submit",
            "nobody.submit=500",
            "kling.tts=500",
            "kling.submit=REJECTED",
            "fal.submit=1303",
            "sync.submit=429x0",
            "sync.submit=999",
            "media=frobnicate",
            "fal.submit=outcome_unknown",
            "kling.status=slow=abc",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn counts_are_spent_and_fates_taken_at_creation() {
        let mut set = FaultSet::new(&[
            p("*.submit=500x2"),
            p("sync.status=stallx1"),
            p("sync.status=REJECTEDx1"),
        ]);
        assert_eq!(set.take_call(Provider::Kling, Endpoint::Submit).len(), 1);
        assert_eq!(set.take_call(Provider::Sync, Endpoint::Submit).len(), 1);
        assert!(set.take_call(Provider::Sync, Endpoint::Submit).is_empty());
        assert!(set.take_call(Provider::Sync, Endpoint::Status).is_empty());
        assert_eq!(set.take_fates(Provider::Sync), vec![JobFate::Stall]);
        assert_eq!(
            set.take_fates(Provider::Sync),
            vec![JobFate::Status("REJECTED".into())]
        );
        assert!(set.take_fates(Provider::Sync).is_empty());
        let mut set = FaultSet::new(&[
            p("kling.submit=429x1"),
            p("kling.submit=500x1"),
            p("kling.submit=slow=0x2"),
        ]);
        assert_eq!(set.take_call(Provider::Kling, Endpoint::Submit).len(), 2);
        let second = set.take_call(Provider::Kling, Endpoint::Submit);
        assert!(matches!(
            second[0],
            FaultAction::Error(InjectedError { status: 500, .. })
        ));
        assert!(set.take_call(Provider::Kling, Endpoint::Submit).is_empty());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{target, text_from};

    const PIECES: &[&str] = &[
        "kling",
        "fal",
        "sync",
        "synclabs",
        "elevenlabs",
        "el",
        "*",
        "media",
        ".",
        "=",
        "submit",
        "status",
        "result",
        "tts",
        "voices",
        "cancel",
        "429",
        "500",
        "404",
        "1303",
        "1102",
        "5001",
        "x",
        "2",
        "0",
        "slot",
        ":",
        ",",
        "retry-after=",
        "retry-after-date=",
        "slow=",
        "trickle=",
        "18446744073709551616",
        "truncate",
        "html",
        "stall",
        "REJECTED",
        "no_output",
        "quota",
        "alias",
        "output_url",
        " ",
        "é",
    ];

    /// Any `--fault` text parses into a rule that prints back as given and parses again to the same rule, or is
    /// refused with a reason; never a panic.
    #[test]
    fn fuzz_fault_spec() {
        target("fault_spec", |u| {
            let text = text_from(u, PIECES)?;
            match text.parse::<FaultSpec>() {
                Ok(spec) => {
                    assert_eq!(spec.to_string(), text.trim());
                    let again: FaultSpec = spec.to_string().parse().expect("a printed rule parses");
                    assert_eq!(again, spec);
                    assert_ne!(spec.count, Some(0));
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            Ok(())
        });
    }
}
