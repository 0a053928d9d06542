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

/// A check's detail as one readable line: the first line, at most 160 characters; an error chain
/// (`a: b: c`) keeps its first link. The raw text is shown folded when this differs from it.
pub(crate) fn summary(detail: &str) -> String {
    let first = detail.lines().next().unwrap_or("").trim();
    let first = if first.chars().count() > 160 {
        first.split(": ").next().unwrap_or(first)
    } else {
        first
    };
    super::view::excerpt(first, 160)
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
        let chain = format!(
            "error sending request: {}\ncaused by: invalid peer certificate",
            "x".repeat(200)
        );
        assert_eq!(summary(&chain), "error sending request");
    }
}
