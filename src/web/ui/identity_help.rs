//! Plain words for the identity pages: the user guide's Troubleshooting entries ("LoRA validation failed",
//! "Digital twin not available", "Image doesn't look like me", "Fal.ai generation failed") matched to the
//! identity test's failed checks, and a failed check's detail cut to one readable line (the raw text is folded
//! away on the page).

/// One Troubleshooting entry of the guide: its heading, causes and solutions.
#[derive(Debug, Clone)]
pub(crate) struct Help {
    /// The guide's heading, e.g. `LoRA validation failed`.
    pub title: &'static str,
    /// Likely causes.
    pub causes: &'static [&'static str],
    /// What to do, in order.
    pub solutions: &'static [&'static str],
}

const LORA_FAILED: Help = Help {
    title: "LoRA validation failed",
    causes: &[
        "LoRA URL not accessible",
        "File too small (< 10MB suggests wrong file)",
        "URL expired or incorrect",
    ],
    solutions: &[
        "Verify URL is publicly accessible",
        "Check file is .safetensors format",
        "Re-upload and get fresh URL",
    ],
};

const TWIN_UNAVAILABLE: Help = Help {
    title: "Digital twin not available",
    causes: &["FAL_KEY not configured", "No LoRA URL set"],
    solutions: &[
        "Add FAL_KEY to environment variables",
        "Upload and configure LoRA URL",
    ],
};

const NOT_LIKE_ME: Help = Help {
    title: "Image doesn't look like me",
    causes: &[
        "LoRA scale too low",
        "Trigger word not in prompt",
        "LoRA not well-trained",
    ],
    solutions: &[
        "Increase LoRA scale to 0.95-1.0",
        "Verify trigger word is correct",
        "Retrain with more/better photos",
    ],
};

const GENERATION_FAILED: Help = Help {
    title: "Fal.ai generation failed",
    causes: &["API quota exceeded", "Invalid prompt", "LoRA incompatible"],
    solutions: &[
        "Check Fal.ai dashboard for quota",
        "Simplify prompt",
        "Re-train LoRA if persistent",
    ],
};

/// The guide's Troubleshooting entry for a failed check (by its stable name); `None` for the voice checks,
/// which the guide does not cover.
pub(crate) fn for_check(name: &str) -> Option<Help> {
    Some(match name {
        "loraUrl" | "loraReachable" | "loraFile" | "baseModel" => LORA_FAILED,
        "triggerWord" | "referencePhotos" | "referencePhoto" | "referenceAgreement" => NOT_LIKE_ME,
        "testRender" => GENERATION_FAILED,
        _ => return None,
    })
}

/// The guide's entry for the status card when digital twin mode is not available.
pub(crate) fn twin_unavailable() -> Help {
    TWIN_UNAVAILABLE
}

/// Where the default identity comes from, in words (`database`, `env`, `none`).
pub(crate) fn default_source(source: &str) -> &'static str {
    match source {
        "database" => "chosen with Set default",
        "env" => "the server's DEVEN_LORA_URL",
        _ => "",
    }
}

/// Known causes inside an error chain, in plain words (first match wins).
const PLAIN_CAUSES: [(&str, &str); 7] = [
    (
        "connection refused",
        "the server refused the connection (check the address, and that the server is up)",
    ),
    (
        "certificate",
        "the server's HTTPS certificate was not accepted",
    ),
    ("dns error", "the host name could not be found"),
    (
        "failed to lookup address",
        "the host name could not be found",
    ),
    ("timed out", "the server did not answer in time"),
    ("404", "there is no file at this address (404)"),
    (
        "403",
        "the server refused access (403): the link may have expired",
    ),
];

/// A check's detail as one readable line. An error chain (`a: b: c: d`, or several lines) becomes its known
/// cause in plain words, else its first link; other text its first line, at most 160 characters. The raw text
/// is shown folded when this differs from it.
pub(crate) fn summary(detail: &str) -> String {
    let first = detail.lines().next().unwrap_or("").trim();
    let chain = detail.contains('\n') || first.matches(": ").count() >= 2;
    if !chain {
        return super::view::excerpt(first, 160);
    }
    let lower = detail.to_ascii_lowercase();
    match PLAIN_CAUSES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
    {
        Some((_, plain)) => (*plain).to_string(),
        None => super::view::excerpt(first.split(": ").next().unwrap_or(first), 160),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_checks_map_to_the_guide() {
        assert_eq!(
            for_check("loraReachable").map(|h| h.title),
            Some("LoRA validation failed")
        );
        assert_eq!(
            for_check("triggerWord").map(|h| h.title),
            Some("Image doesn't look like me")
        );
        assert!(for_check("voiceLookup").is_none());
        let tls = "request failed: error sending request\ncaused by: invalid peer certificate: UnknownIssuer";
        assert_eq!(
            summary(tls),
            "the server's HTTPS certificate was not accepted"
        );
        assert_eq!(summary("a: b: c"), "a");
        assert_eq!(
            summary("no face found: one face"),
            "no face found: one face"
        );
    }
}
