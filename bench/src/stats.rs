//! Latency summaries from raw samples (microseconds, one per request).
//!
//! Samples are kept exactly rather than in a histogram: a 5-second run is at
//! most a few hundred thousand `u32`s, and sorting them once is cheaper for
//! the client than bucketing on the hot path.

use serde::Serialize;

/// Percentiles of a run's latencies, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: u64,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: u32,
    pub(crate) p90_us: u32,
    pub(crate) p99_us: u32,
    pub(crate) p999_us: u32,
    pub(crate) max_us: u32,
}

impl Latency {
    /// Summarises `samples` (sorted in place).
    pub(crate) fn from_samples(samples: &mut [u32]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let sum: u64 = samples.iter().map(|&s| u64::from(s)).sum();
        Latency {
            samples: samples.len() as u64,
            mean_us: sum as f64 / samples.len() as f64,
            p50_us: percentile(samples, 50.0),
            p90_us: percentile(samples, 90.0),
            p99_us: percentile(samples, 99.0),
            p999_us: percentile(samples, 99.9),
            max_us: samples[samples.len() - 1],
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    // The epsilon keeps 99.9% of 1000 at rank 999 despite binary rounding.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds as milliseconds for tables.
pub(crate) fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u32> = (1..=1000).rev().collect();
        let l = Latency::from_samples(&mut samples);
        assert_eq!(
            (l.samples, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us),
            (1000, 500, 900, 990, 999, 1000)
        );
        assert!((l.mean_us - 500.5).abs() < 1e-9);
        assert_eq!(Latency::from_samples(&mut []).samples, 0);
        assert_eq!(Latency::from_samples(&mut [7]).p99_us, 7);
    }
}
