//! Small formatting helpers for the templates: times, money, durations, sizes and status words.

/// The confirmation shown after a redirect with `?ok=KEY`; unknown keys show nothing.
pub(crate) fn flash_message(key: &str) -> Option<&'static str> {
    Some(match key {
        "project-created" => "Project created.",
        "project-saved" => "Project saved.",
        "project-deleted" => "Project deleted.",
        "scene-created" => "Scene added.",
        "scene-saved" => "Scene saved.",
        "scene-deleted" => "Scene deleted.",
        "reordered" => "Scene order saved.",
        "generating" => "Generation started; progress appears below as it happens.",
        "previewing" => {
            "Preview started: local voice and motion, nothing is paid, and the generated videos stay \
                         as they are. It appears below when done."
        }
        "canceled" => "Generation canceled.",
        "busy" => {
            "A generation of this project is already running: it is listed under Runs below. Generate again \
             when it has finished (or cancel it on its scene's page)."
        }
        "identity-created" => "Identity created.",
        "identity-saved" => "Identity saved.",
        "identity-deleted" => "Identity deleted.",
        "identity-tested" => "Identity tested; the result is on its card.",
        "default-set" => "Default identity set.",
        "photos-added" => "Photos added; what each one shows is below.",
        "photo-removed" => "Photo removed.",
        "consent-saved" => "Consent recorded.",
        "training-started" => {
            "Training started on Fal; it takes a few minutes. Its progress is in the logs (step LORA_TRAINING)."
        }
        "uploaded" => "File uploaded.",
        "asset-deleted" => "Asset deleted.",
        "demo" => "The demo project is rendering; progress appears below as it happens.",
        _ => return None,
    })
}

/// Makes an API message read as a sentence (capital letter, final full stop).
pub(crate) fn sentence(message: &str) -> String {
    let m = message.trim().replace('\n', "; ");
    let mut chars = m.chars();
    let mut out = match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => return "Something went wrong.".into(),
    };
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Epoch milliseconds as an ISO 8601 `datetime` attribute.
pub(crate) fn iso(ms: i64) -> String {
    let t = time(ms);
    format!("{}T{}Z", &t[..10], &t[11..19])
}

/// US dollars with cents (`$0.58`), or four decimals under a cent; never a negative zero (`$-0.00`).
pub(crate) fn usd(v: f64) -> String {
    let v = if v.abs() < 0.00005 { 0.0 } else { v };
    if v > 0.0 && v < 0.01 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// A unit price with as many decimals as it has (at least two, at most four): `$0.035`, `$3.00`.
pub(crate) fn price(v: f64) -> String {
    let mut s = format!("{v:.4}");
    while s.ends_with('0') && s.len() - s.find('.').map_or(0, |d| d + 1) > 2 {
        s.pop();
    }
    format!("${s}")
}

/// Milliseconds as `850 ms` or `12.3 s`.
pub(crate) fn ms(v: i64) -> String {
    if v < 1000 {
        format!("{v} ms")
    } else {
        format!("{:.1} s", v as f64 / 1000.0)
    }
}

/// Seconds as `6.3 s`.
pub(crate) fn seconds(v: f64) -> String {
    format!("{v:.1} s")
}

/// Bytes as `1.2 MB`.
pub(crate) fn bytes(v: i64) -> String {
    let v = v.max(0) as f64;
    if v >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", v / (1024.0 * 1024.0 * 1024.0))
    } else if v >= 1024.0 * 1024.0 {
        format!("{:.1} MB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.0} KB", v / 1024.0)
    } else {
        format!("{v} bytes")
    }
}

/// The first `n` characters of `s`, with an ellipsis when cut.
pub(crate) fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// The URL of a stored media object (`media/aa/….mp4`) relative to the root; empty for anything else.
pub(crate) fn media(root: &str, key: &str) -> String {
    let ok = key.starts_with("media/")
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.');
    if ok {
        format!("{root}{key}")
    } else {
        String::new()
    }
}

/// A scene's or project's status in words, as shown on badges.
pub(crate) fn status_word(status: &str) -> &'static str {
    match status {
        "draft" => "draft",
        "queued" => "queued",
        "generating" | "running" => "generating",
        "completed" | "succeeded" => "completed",
        "failed" => "failed",
        "canceled" => "canceled",
        "abandoned" | "interrupted" => "abandoned",
        "skipped" => "skipped",
        "pending" => "pending",
        _ => "unknown",
    }
}

/// A run as the dashboard and project pages list it.
#[derive(Debug, Clone)]
pub(crate) struct RunView {
    /// Run id.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Scene id (empty for a whole-project run).
    pub scene_id: String,
    /// What it covers, in words.
    pub what: String,
    /// Status word.
    pub status: &'static str,
    /// Start time.
    pub started: String,
    /// Start time for `datetime`.
    pub started_iso: String,
    /// How long it took (or "queued"/"running").
    pub took: String,
    /// Failure reason.
    pub error: String,
    /// The identity a training run trained (empty for renders).
    pub identity_id: String,
}

impl RunView {
    /// A training run of the identity called `name`, as the run history lists it.
    pub(crate) fn training(t: &crate::storage::db::TrainingRow, name: &str) -> Self {
        let mut what = format!("{name}: digital twin training (LORA_TRAINING)");
        if t.cached {
            what.push_str(" (reused, $0)");
        }
        Self {
            id: t.id.clone(),
            project_id: String::new(),
            scene_id: String::new(),
            what,
            status: status_word(&t.status),
            started: time(t.created_at),
            started_iso: iso(t.created_at),
            took: t
                .finished_at
                .map(|f| ms(f - t.created_at))
                .unwrap_or_else(|| t.status.clone()),
            error: t.error.clone().unwrap_or_default(),
            identity_id: t.identity_id.clone(),
        }
    }
}

impl From<&crate::storage::db::RunSummary> for RunView {
    fn from(r: &crate::storage::db::RunSummary) -> Self {
        let mut what = match (&r.scene_name, &r.scene_id) {
            (_, None) => format!("{}: all scenes", r.project_name),
            (Some(s), Some(_)) => format!("{}: scene {s}", r.project_name),
            (None, Some(_)) => format!("{}: a deleted scene", r.project_name),
        };
        if r.preview {
            what.push_str(" (preview, $0)");
        }
        Self {
            id: r.id.to_string(),
            project_id: r.project_id.to_string(),
            scene_id: r.scene_id.as_deref().unwrap_or_default().to_string(),
            what,
            status: status_word(r.status.as_str()),
            started: time(r.created_at),
            started_iso: iso(r.created_at),
            took: r
                .finished_at
                .map(|f| ms(f - r.created_at))
                .unwrap_or_else(|| r.status.as_str().to_string()),
            error: r.error.clone().unwrap_or_default(),
            identity_id: String::new(),
        }
    }
}

/// A project as lists show it.
#[derive(Debug, Clone)]
pub(crate) struct ProjectItem {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status word.
    pub status: &'static str,
    /// Creation time.
    pub created: String,
    /// Aspect ratio.
    pub aspect: &'static str,
    /// Number of scenes.
    pub scenes: i64,
    /// Assembled length, or empty.
    pub duration: String,
}

impl ProjectItem {
    /// The list item of a stored project with `scenes` scenes.
    pub fn new(p: &crate::storage::db::ProjectRecord, scenes: i64) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.project.name.clone(),
            status: status_word(p.status.as_str()),
            created: time(p.created_at),
            aspect: p.project.aspect_ratio.as_str(),
            scenes,
            duration: p.duration_seconds.map(seconds).unwrap_or_default(),
        }
    }

    /// This item shown as out of date when `stale` and its video exists.
    pub fn out_of_date(mut self, stale: bool) -> Self {
        if stale && self.status == "completed" {
            self.status = "out of date";
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_767_960_000_000), "2026-01-09 12:00:00 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(usd(0.575), "$0.57");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(-0.0), "$0.00");
        assert_eq!(usd(-0.000001), "$0.00");
        assert_eq!(usd(0.0035), "$0.0035");
        assert_eq!(price(0.035), "$0.035");
        assert_eq!(price(3.0), "$3.00");
        assert_eq!(price(0.0562), "$0.0562");
        assert_eq!(ms(850), "850 ms");
        assert_eq!(ms(12_345), "12.3 s");
        assert_eq!(bytes(2 * 1024 * 1024), "2.0 MB");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(sentence("file is required"), "File is required.");
    }

    #[test]
    fn only_media_keys_become_urls() {
        assert_eq!(media("../", "media/ab/cd.mp4"), "../media/ab/cd.mp4");
        assert_eq!(media("./", "https://evil.example/x"), "");
        assert_eq!(media("./", "media/../secret"), "");
    }
}
