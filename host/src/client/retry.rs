//! When the developer CLI waits and tries again, as pure functions: how
//! long a 429 asks to wait, and exponential backoff with full jitter for
//! transient failures. The HTTP client applies them; these only decide.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// Retries after a 429 before giving up.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// Longest single wait a 429 may impose; beyond it the CLI gives up and
/// says when to come back.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Attempts (the first included) for a request that failed in transit.
pub const MAX_TRANSIENT_ATTEMPTS: u32 = 4;
/// Total time spent backing off transient failures.
pub const MAX_TRANSIENT_WAIT: Duration = Duration::from_secs(15);
const BASE: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(8);

/// How long a 429 asks to wait: `Retry-After` (seconds or an HTTP date),
/// else the `t=` of the RateLimit field, else one second.
pub fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Duration {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(value) = header("retry-after") {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Duration::from_secs(secs);
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return at.duration_since(now).unwrap_or(Duration::ZERO);
        }
    }
    header("ratelimit")
        .and_then(|v| {
            v.split(';')
                .find_map(|part| part.trim().strip_prefix("t="))
                .and_then(|t| t.parse::<u64>().ok())
        })
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1))
}

/// A little more than `wait`, so clients told the same moment do not all
/// come back in the same millisecond.
pub fn with_jitter(wait: Duration, random: u64) -> Duration {
    let extra_ms = random % (wait.as_millis() as u64 / 10 + 100);
    wait + Duration::from_millis(extra_ms)
}

/// Full-jitter exponential backoff before retry `attempt` (1-based):
/// uniformly random in `[0, min(CAP, BASE · 2^attempt)]`.
pub fn backoff(attempt: u32, random: u64) -> Duration {
    let ceiling = BASE
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(CAP);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(if ms == 0 { 0 } else { random % (ms + 1) })
}

/// Whether a response status is worth retrying for a request that can
/// safely run twice.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// Random bits for jitter.
pub fn random() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        map
    }

    #[test]
    fn waits_follow_retry_after_then_ratelimit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            rate_limit_wait(&headers(&[("retry-after", "7")]), now),
            Duration::from_secs(7)
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            rate_limit_wait(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]),
                now
            ),
            Duration::from_secs(10)
        );
        assert_eq!(
            rate_limit_wait(&headers(&[("ratelimit", "\"calls\";r=0;t=36")]), now),
            Duration::from_secs(36)
        );
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), now),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, u64::MAX), Duration::from_millis(u64::MAX % 501));
        for attempt in 1..30 {
            assert!(backoff(attempt, u64::MAX) <= CAP);
            assert_eq!(
                backoff(attempt, 0),
                Duration::ZERO,
                "full jitter reaches zero"
            );
        }
        assert!(with_jitter(Duration::from_secs(10), 12_345) < Duration::from_millis(11_100));
        assert!(is_transient(503) && !is_transient(500) && !is_transient(429));
    }
}
