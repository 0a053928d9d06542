//! Retry delays: exponential with jitter, honouring `Retry-After`, capped.

use std::time::Duration;

/// The delay before retry number `attempt` (0-based): `base · 2^attempt`, scaled by `jitter` (0–1, supplied by
/// the caller so this stays pure) into `[½, 1]` of that, never less than the server's `Retry-After`, at most `cap`.
pub fn backoff_delay(
    attempt: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(30)));
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let jittered = exp.mul_f64(0.5 + 0.5 * jitter);
    jittered.max(retry_after.unwrap_or_default()).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let b = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        assert_eq!(backoff_delay(0, b, cap, None, 1.0), b);
        assert_eq!(
            backoff_delay(3, b, cap, None, 1.0),
            Duration::from_millis(800)
        );
        assert_eq!(
            backoff_delay(3, b, cap, None, 0.0),
            Duration::from_millis(400)
        );
        assert_eq!(backoff_delay(20, b, cap, None, 1.0), cap);
        assert_eq!(backoff_delay(u32::MAX, b, cap, None, f64::NAN), cap);
    }

    #[test]
    fn retry_after_is_a_floor_but_still_capped() {
        let b = Duration::from_millis(100);
        assert_eq!(
            backoff_delay(
                0,
                b,
                Duration::from_secs(10),
                Some(Duration::from_secs(3)),
                0.5
            ),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff_delay(
                0,
                b,
                Duration::from_secs(2),
                Some(Duration::from_secs(30)),
                0.5
            ),
            Duration::from_secs(2)
        );
    }
}
