//! Readings from `/proc`: resident memory of the server, CPU time of a
//! process or of this process's threads by name, and the load average.
//!
//! CPU time is what makes runs comparable on a shared two-core machine:
//! throughput moves with whatever else is running, CPU per request much less.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde::Serialize;

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub(crate) peak_kib: u64,
}

impl Memory {
    pub(crate) fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub(crate) fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

pub(crate) fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("{path} has no {name}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Clock ticks per second for the `utime`/`stime` fields (USER_HZ).
pub(crate) fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU time and page faults of a process or thread, from its `stat` file.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    /// User plus system time, in clock ticks.
    pub(crate) ticks: u64,
    /// Minor page faults (a page mapped or zero-filled on first touch).
    pub(crate) minor_faults: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, other: Usage) -> Usage {
        Usage {
            ticks: self.ticks + other.ticks,
            minor_faults: self.minor_faults + other.minor_faults,
        }
    }
}

impl Usage {
    pub(crate) fn since(self, earlier: Usage) -> Usage {
        Usage {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

fn stat_usage(path: &Path) -> Option<Usage> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may contain spaces; the numeric
    // fields start after the last ')' with field 3 (state). minflt is field
    // 10, utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Usage {
        ticks: field(14)? + field(15)?,
        minor_faults: field(10)?,
    })
}

/// Usage of a whole process (all threads, live and exited).
pub(crate) fn process_usage(pid: u32) -> Usage {
    stat_usage(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or_default()
}

/// Usage of this process's live threads whose name starts with `prefix`
/// (the echo server's runtime threads are named for this).
pub(crate) fn own_threads_usage(prefix: &str) -> Usage {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Usage::default();
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .filter_map(|task| stat_usage(&task.path().join("stat")))
        .fold(Usage::default(), |a, b| a + b)
}

/// Nanoseconds on CPU of a process's live threads (`schedstat`): finer than
/// clock ticks, for measuring a mostly idle server.
pub(crate) fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The 1-minute load average, to judge how busy the machine was.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}
