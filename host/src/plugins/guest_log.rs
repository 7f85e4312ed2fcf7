//! What plugins may write into the server's log: every guest-supplied string
//! is escaped so it stays on one line and cannot pass for a host line, and
//! `host.log` is budgeted per call and per plugin per second so a plugin
//! looping on it cannot fill the disk.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use crate::config::PluginLimits;

/// `text` with control characters (line breaks, carriage returns, ANSI
/// escapes), Unicode line separators and bidirectional overrides written as
/// escapes, so a guest string is one line in both log formats and cannot
/// start a line of its own or repaint the terminal. Backslashes are left as
/// they are: without a raw line break no forged line can start.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// One plugin's log allowance, shared by all its calls of one generation.
pub(crate) struct PluginLog {
    plugin: Arc<str>,
    per_call_lines: u32,
    per_call_bytes: usize,
    per_second_lines: u32,
    per_second_bytes: usize,
    window: Mutex<Window>,
    /// `toolhost_plugin_log_lines_dropped_total{plugin}`.
    dropped: Counter,
}

/// Lines and bytes logged since `started`, a one-second window.
struct Window {
    started: Instant,
    lines: u32,
    bytes: usize,
}

const WINDOW: Duration = Duration::from_secs(1);

impl PluginLog {
    pub(crate) fn new(plugin: Arc<str>, limits: &PluginLimits, dropped: Counter) -> PluginLog {
        PluginLog {
            plugin,
            per_call_lines: limits.log_lines,
            per_call_bytes: limits.log_bytes,
            per_second_lines: limits.log_lines_per_second,
            per_second_bytes: limits.log_bytes_per_second,
            window: Mutex::new(Window {
                started: Instant::now(),
                lines: 0,
                bytes: 0,
            }),
            dropped,
        }
    }

    /// Takes one line of `bytes` from this second's allowance, if it fits.
    fn admit(&self, now: Instant, bytes: usize) -> bool {
        // A poisoned lock only means another call panicked mid-update of
        // two counters; the counts are still usable.
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                lines: 0,
                bytes: 0,
            };
        }
        if window.lines >= self.per_second_lines
            || window.bytes.saturating_add(bytes) > self.per_second_bytes
        {
            return false;
        }
        window.lines += 1;
        window.bytes += bytes;
        true
    }
}

/// One call's log allowance. Dropped with the call's store, it writes one
/// summary line for whatever it refused and counts it in the metric.
pub(crate) struct LogBudget {
    plugin: Arc<PluginLog>,
    request_id: Arc<str>,
    lines_left: u32,
    bytes_left: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    pub(crate) fn new(plugin: Arc<PluginLog>, request_id: Arc<str>) -> LogBudget {
        LogBudget {
            lines_left: plugin.per_call_lines,
            bytes_left: plugin.per_call_bytes,
            plugin,
            request_id,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Whether a line of `bytes` may be logged now; a refused line is counted.
    pub(crate) fn admit(&mut self, bytes: usize) -> bool {
        self.admit_at(Instant::now(), bytes)
    }

    fn admit_at(&mut self, now: Instant, bytes: usize) -> bool {
        let admitted =
            self.lines_left > 0 && bytes <= self.bytes_left && self.plugin.admit(now, bytes);
        if admitted {
            self.lines_left -= 1;
            self.bytes_left -= bytes;
        } else {
            self.dropped_lines += 1;
            self.dropped_bytes = self.dropped_bytes.saturating_add(bytes as u64);
        }
        admitted
    }
}

impl Drop for LogBudget {
    fn drop(&mut self) {
        if self.dropped_lines == 0 {
            return;
        }
        self.plugin.dropped.inc_by(self.dropped_lines);
        tracing::warn!(
            plugin = &*self.plugin.plugin,
            request_id = &*self.request_id,
            dropped_lines = self.dropped_lines,
            dropped_bytes = self.dropped_bytes,
            "plugin log lines dropped: over the call's log budget (plugins.limits.log_lines, log_bytes) or the plugin's rate (log_lines_per_second, log_bytes_per_second)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_break_or_repaint_a_line() {
        let check = |input: &str, expect: &str| assert_eq!(escape(input), expect, "{input:?}");
        check(
            "plain text, with \\ and \"quotes\"",
            "plain text, with \\ and \"quotes\"",
        );
        check("a\nb", "a\\nb");
        check("a\r\nb\tc", "a\\r\\nb\\tc");
        check("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m");
        check("nul\0del\u{7f}c1\u{85}", "nul\\u{0}del\\u{7f}c1\\u{85}");
        check("line\u{2028}sep", "line\\u{2028}sep");
        check("abc\u{202e}fed", "abc\\u{202e}fed");
        check("ünïcödé ✓", "ünïcödé ✓");
        assert!(matches!(escape("clean"), Cow::Borrowed(_)));
    }

    fn limits(
        lines: u32,
        bytes: usize,
        per_second_lines: u32,
        per_second_bytes: usize,
    ) -> PluginLimits {
        PluginLimits {
            log_lines: lines,
            log_bytes: bytes,
            log_lines_per_second: per_second_lines,
            log_bytes_per_second: per_second_bytes,
            ..PluginLimits::default()
        }
    }

    #[test]
    fn a_call_logs_up_to_its_lines_and_bytes() {
        let dropped = Counter::default();
        let plugin = Arc::new(PluginLog::new(
            Arc::from("p"),
            &limits(3, 100, 1000, 1 << 20),
            dropped.clone(),
        ));
        let mut call = LogBudget::new(plugin.clone(), Arc::from("r1"));
        assert!(call.admit(10));
        assert!(call.admit(10));
        assert!(!call.admit(81), "over the bytes left");
        assert!(call.admit(80));
        assert!(!call.admit(0), "over the lines");
        drop(call);
        assert_eq!(dropped.get(), 2);
        // The next call has its own budget.
        let mut next = LogBudget::new(plugin, Arc::from("r2"));
        assert!(next.admit(10));
        drop(next);
        assert_eq!(dropped.get(), 2);
    }

    #[test]
    fn a_plugin_logs_up_to_its_rate_across_calls() {
        let dropped = Counter::default();
        let plugin = Arc::new(PluginLog::new(
            Arc::from("p"),
            &limits(100, 1 << 20, 3, 1 << 20),
            dropped.clone(),
        ));
        let start = Instant::now();
        let mut calls: Vec<LogBudget> = (0..4)
            .map(|i| LogBudget::new(plugin.clone(), Arc::from(format!("r{i}"))))
            .collect();
        let admitted: Vec<bool> = calls
            .iter_mut()
            .map(|call| call.admit_at(start, 1))
            .collect();
        assert_eq!(admitted, [true, true, true, false]);
        // A second later the window opens again.
        assert!(calls[3].admit_at(start + WINDOW, 1));
        drop(calls);
        assert_eq!(dropped.get(), 1);
        // Bytes per second bound it too.
        let plugin = Arc::new(PluginLog::new(
            Arc::from("p"),
            &limits(100, 1 << 20, 100, 50),
            Counter::default(),
        ));
        let mut call = LogBudget::new(plugin, Arc::from("r"));
        assert!(call.admit_at(start, 40));
        assert!(!call.admit_at(start, 11));
        assert!(call.admit_at(start, 10));
    }
}
