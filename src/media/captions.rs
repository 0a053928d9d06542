//! Captions: word timings → cues → SRT and WebVTT.

use serde::{Deserialize, Serialize};

/// One spoken word and when it is heard, in seconds from the start of the speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTiming {
    /// The word as written.
    pub word: String,
    /// Start time, seconds.
    pub start: f64,
    /// End time, seconds.
    pub end: f64,
}

/// One caption cue.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Start time, seconds.
    pub start: f64,
    /// End time, seconds.
    pub end: f64,
    /// Text shown.
    pub text: String,
}

/// Most words in one cue.
const MAX_WORDS_PER_CUE: usize = 8;
/// Longest cue, seconds.
const MAX_CUE_SECONDS: f64 = 3.5;

/// Estimates word timings when the speech engine gives none: the speech time is shared out in
/// proportion to each word's length, with extra weight for the pause after punctuation.
pub fn estimate_word_timings(text: &str, speech_seconds: f64) -> Vec<WordTiming> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !speech_seconds.is_finite() || speech_seconds <= 0.0 {
        return Vec::new();
    }
    let weight = |w: &str| {
        let letters = w.chars().filter(|c| c.is_alphanumeric()).count().max(1) as f64;
        let pause = match w.chars().last() {
            Some('.' | '!' | '?') => 4.0,
            Some(',' | ';' | ':') => 2.0,
            _ => 0.0,
        };
        (letters + 1.0, pause)
    };
    let total: f64 = words
        .iter()
        .map(|w| {
            let (a, p) = weight(w);
            a + p
        })
        .sum();
    let per_unit = speech_seconds / total;
    let mut t = 0.0;
    words
        .iter()
        .map(|w| {
            let (spoken, pause) = weight(w);
            let start = t;
            let end = t + spoken * per_unit;
            t = end + pause * per_unit;
            WordTiming {
                word: (*w).to_string(),
                start: millis(start),
                end: millis(end),
            }
        })
        .collect()
}

/// Rounds seconds to whole milliseconds (stable through JSON).
fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Groups words into readable cues (at most 8 words or 3.5 s, breaking after sentence ends).
pub fn cues(words: &[WordTiming]) -> Vec<Cue> {
    let mut out = Vec::new();
    let mut current: Vec<&WordTiming> = Vec::new();
    for w in words {
        if let Some(first) = current.first()
            && (current.len() >= MAX_WORDS_PER_CUE || w.end - first.start > MAX_CUE_SECONDS)
        {
            out.push(make_cue(&current));
            current.clear();
        }
        current.push(w);
        if w.word.ends_with(['.', '!', '?']) {
            out.push(make_cue(&current));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(make_cue(&current));
    }
    out
}

fn make_cue(words: &[&WordTiming]) -> Cue {
    Cue {
        start: words.first().map(|w| w.start).unwrap_or(0.0),
        end: words.last().map(|w| w.end).unwrap_or(0.0),
        text: words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Shifts word timings by `offset` seconds (for a scene placed inside a project).
pub fn shifted(words: &[WordTiming], offset: f64) -> Vec<WordTiming> {
    words
        .iter()
        .map(|w| WordTiming {
            word: w.word.clone(),
            start: millis(w.start + offset),
            end: millis(w.end + offset),
        })
        .collect()
}

fn timestamp(seconds: f64, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{decimal}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A cue's text as one caption line: whitespace runs (line breaks included, which would end the cue early) become
/// one space, and `-->` (which a reader would take for a timing line) becomes an arrow.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "\u{2192}")
}

/// Renders cues as SubRip (SRT); cues without visible text are left out.
pub fn to_srt(cues: &[Cue]) -> String {
    let mut s = String::new();
    let shown = cues.iter().map(|c| (c, one_line(&c.text)));
    for (i, (c, text)) in shown.filter(|(_, t)| !t.is_empty()).enumerate() {
        s.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(c.start, ','),
            timestamp(c.end, ','),
            text
        ));
    }
    s
}

/// Renders cues as WebVTT; cues without visible text are left out.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut s = String::from("WEBVTT\n\n");
    for c in cues.iter().filter(|c| !one_line(&c.text).is_empty()) {
        let text = one_line(&c.text)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        s.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(c.start, '.'),
            timestamp(c.end, '.'),
            text
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimated_timings_cover_the_speech_in_order() {
        let words = estimate_word_timings("Hello there, my digital twin. Welcome!", 4.0);
        assert_eq!(words.len(), 6);
        assert!(words.windows(2).all(|p| p[0].end <= p[1].start));
        let last = words.last().unwrap();
        assert!(last.end <= 4.0 + 1e-9 && last.end > 3.0, "{last:?}");
    }

    #[test]
    fn cues_break_after_sentences_and_render_both_formats() {
        let words = estimate_word_timings("One two. Three four five.", 3.0);
        let cues = cues(&words);
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].text, "One two.");
        let srt = to_srt(&cues);
        assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
        let vtt = to_vtt(&cues);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> "), "{vtt}");
        assert!(vtt.contains("Three four five."));
    }

    #[test]
    fn timestamps_roll_over_minutes() {
        assert_eq!(timestamp(61.5, ','), "00:01:01,500");
        assert_eq!(timestamp(3725.004, '.'), "01:02:05.004");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{target, text_from};
    use arbtest::arbitrary::{Result, Unstructured};

    const PIECES: &[&str] = &[
        "Hello",
        " ",
        "twin.",
        "-->",
        "\n",
        "\r\n",
        "\n\n",
        "&",
        "<b>",
        ",",
        "?",
        "é",
        "\u{200b}",
        "\t",
        "00:00:01,000",
    ];

    fn seconds(u: &mut Unstructured<'_>) -> Result<f64> {
        Ok(match u.int_in_range(0..=5)? {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => -f64::from(u.int_in_range(0..=10u32)?),
            3 => 0.0,
            _ => f64::from(u.int_in_range(1..=600_000u32)?) / 1000.0,
        })
    }

    /// Checks a SubRip or WebVTT body: one block per cue of (index line,) timing line, one text line.
    fn assert_well_formed(doc: &str, cues: usize, index_line: bool) {
        let blocks: Vec<&str> = doc.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert_eq!(blocks.len(), cues, "{doc:?}");
        for (i, b) in blocks.iter().enumerate() {
            let lines: Vec<&str> = b.split('\n').collect();
            assert_eq!(lines.len(), if index_line { 3 } else { 2 }, "{b:?}");
            if index_line {
                assert_eq!(lines[0], (i + 1).to_string(), "{b:?}");
            }
            let (timing, text) = (lines[lines.len() - 2], lines[lines.len() - 1]);
            assert_eq!(timing.matches("-->").count(), 1, "{b:?}");
            assert!(!text.contains("-->") && !text.contains('\r'), "{b:?}");
        }
    }

    /// Any dialogue and speech length give ordered timings inside the speech, and SRT and WebVTT with one text
    /// line per cue, whatever characters the words hold.
    #[test]
    fn fuzz_captions() {
        target("captions", |u| {
            let text = text_from(u, PIECES)?;
            let secs = seconds(u)?;
            let mut words = estimate_word_timings(&text, secs);
            for w in &words {
                assert!(w.start.is_finite() && w.end.is_finite(), "{w:?}");
                assert!(
                    0.0 <= w.start && w.start <= w.end && w.end <= secs + 0.001,
                    "{w:?} {secs}"
                );
            }
            assert!(words.windows(2).all(|p| p[0].end <= p[1].start));
            if u.arbitrary()? {
                words.push(WordTiming {
                    word: text_from(u, PIECES)?,
                    start: seconds(u)?,
                    end: seconds(u)?,
                });
            }
            let c = cues(&words);
            let shown = c.iter().filter(|c| !c.text.trim().is_empty()).count();
            let vtt = to_vtt(&c);
            assert!(vtt.starts_with("WEBVTT\n\n"));
            assert_well_formed(&to_srt(&c), shown, true);
            assert_well_formed(&vtt["WEBVTT\n\n".len()..], shown, false);
            Ok(())
        });
    }
}
