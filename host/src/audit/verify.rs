//! Checking the chains: every line's `prev` must be the SHA-256 of the line
//! before it (across its chain's files, in name order) and `seq` must count
//! up by one. A directory may hold several chains, one per replica that
//! wrote there: `audit-[REPLICA-]YYYYMMDD-NNNNNN.jsonl`, each checked alone.
//! An edited, deleted, inserted or reordered line breaks a link; the report
//! names the first broken one. A torn last line (a crash mid-write) is
//! reported, not silently accepted, and does not break the chain that
//! continues after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::writer::GENESIS;

/// What a successful verification saw: one entry per chain, by replica
/// (empty for a server that names none).
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub chains: Vec<ChainReport>,
}

#[derive(Debug, Default)]
pub struct ChainReport {
    pub replica: String,
    pub files: usize,
    pub records: u64,
    /// Torn (incomplete) last lines, as `file:line`.
    pub torn: Vec<String>,
}

impl VerifyReport {
    pub fn records(&self) -> u64 {
        self.chains.iter().map(|c| c.records).sum()
    }

    pub fn files(&self) -> usize {
        self.chains.iter().map(|c| c.files).sum()
    }
}

/// Why the log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {reason}")]
    Broken { location: String, reason: String },
    /// Nothing to check is not a chain that holds: a wrong path, or a log
    /// that was never written.
    #[error("no audit records in {}: nothing to verify", dir.display())]
    NoRecords { dir: PathBuf },
}

/// Where a continuing writer picks up the chain.
pub(crate) struct Tail {
    pub(crate) last_hash: Option<String>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) torn: Option<String>,
}

/// Verifies every chain of `audit-*.jsonl` files in `dir`.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let mut report = VerifyReport::default();
    for (replica, files) in chains(dir)? {
        report.chains.push(verify_chain(replica, &files)?);
    }
    if report.records() == 0 {
        return Err(VerifyError::NoRecords {
            dir: dir.to_path_buf(),
        });
    }
    Ok(report)
}

fn verify_chain(replica: String, files: &[PathBuf]) -> Result<ChainReport, VerifyError> {
    let mut report = ChainReport {
        replica,
        ..ChainReport::default()
    };
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 0u64;
    for path in files {
        report.files += 1;
        let text = read(path)?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let (lines, torn) = split_lines(&text);
        for (line_idx, line) in lines.iter().enumerate() {
            let location = format!("{name}:{}", line_idx + 1);
            let broken = |reason: String| VerifyError::Broken {
                location: location.clone(),
                reason,
            };
            let value: Value = serde_json::from_str(line)
                .map_err(|e| broken(format!("not a JSON record: {e}")))?;
            let prev = value["prev"].as_str().unwrap_or_default();
            if prev != expected_prev {
                return Err(broken(
                    "prev does not match the hash of the record before it: \
                     a record before this one was edited, deleted, inserted or reordered"
                        .into(),
                ));
            }
            if value["seq"].as_u64() != Some(expected_seq) {
                return Err(broken(format!(
                    "seq is {}, expected {expected_seq}: records are missing or out of order",
                    value["seq"]
                )));
            }
            expected_prev = hex::encode(Sha256::digest(line.as_bytes()));
            expected_seq += 1;
            report.records += 1;
        }
        if torn {
            report.torn.push(format!("{name}:{}", lines.len() + 1));
        }
    }
    Ok(report)
}

/// Finds where `replica`'s chain ends, for a writer continuing it at
/// start-up.
pub(crate) fn chain_tail(dir: &Path, replica: &str) -> Result<Tail, VerifyError> {
    let files = chains(dir)?.remove(replica).unwrap_or_default();
    for path in files.iter().rev() {
        let text = read(path)?;
        let (lines, torn) = split_lines(&text);
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let torn = torn.then(|| format!("{name}:{}", lines.len() + 1));
        if let Some(last) = lines.last() {
            let value: Value = serde_json::from_str(last).map_err(|e| VerifyError::Broken {
                location: format!("{name}:{}", lines.len()),
                reason: format!("not a JSON record: {e}"),
            })?;
            return Ok(Tail {
                last_hash: Some(hex::encode(Sha256::digest(last.as_bytes()))),
                last_seq: value["seq"].as_u64(),
                torn,
            });
        }
        if torn.is_some() {
            // A file holding only a torn line: keep looking further back.
            continue;
        }
    }
    Ok(Tail {
        last_hash: None,
        last_seq: None,
        torn: None,
    })
}

/// Complete lines, and whether a non-empty incomplete line follows them.
fn split_lines(text: &str) -> (Vec<&str>, bool) {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let tail = lines.pop().unwrap_or_default();
    (lines, !tail.is_empty())
}

/// The log files in `dir` by chain (replica), each chain's in name order,
/// which is write order.
fn chains(dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>, VerifyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| VerifyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut chains: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let replica = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(replica_of);
        if let Some(replica) = replica {
            chains.entry(replica.to_string()).or_default().push(path);
        }
    }
    for files in chains.values_mut() {
        files.sort();
    }
    Ok(chains)
}

/// The replica whose chain a file name belongs to (`""` for a server that
/// names none), or `None` if it is not a log file:
/// `audit-[REPLICA-]YYYYMMDD-NNNNNN.jsonl`.
pub(crate) fn replica_of(name: &str) -> Option<&str> {
    let stem = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let mut parts = stem.rsplitn(3, '-');
    let seq = parts.next()?;
    let date = parts.next()?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(seq, 6) || !digits(date, 8) {
        return None;
    }
    Some(parts.next().unwrap_or(""))
}

/// The start of `replica`'s file names.
pub(crate) fn file_prefix(replica: &str) -> String {
    if replica.is_empty() {
        "audit-".to_string()
    } else {
        format!("audit-{replica}-")
    }
}

fn read(path: &Path) -> Result<String, VerifyError> {
    std::fs::read_to_string(path).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a chain of `n` records into `dir` across two files.
    fn write_chain(dir: &Path, n: usize) -> Vec<String> {
        write_named_chain(dir, "", n)
    }

    fn write_named_chain(dir: &Path, replica: &str, n: usize) -> Vec<String> {
        let prefix = file_prefix(replica);
        let mut prev = GENESIS.to_string();
        let mut lines = Vec::new();
        for seq in 0..n {
            let line = format!(r#"{{"seq":{seq},"prev":"{prev}","status":"ok"}}"#);
            prev = hex::encode(Sha256::digest(line.as_bytes()));
            lines.push(line);
        }
        let half = n / 2;
        std::fs::write(
            dir.join(format!("{prefix}20260101-000001.jsonl")),
            lines[..half].join("\n") + "\n",
        )
        .expect("write");
        std::fs::write(
            dir.join(format!("{prefix}20260101-000002.jsonl")),
            lines[half..].join("\n") + "\n",
        )
        .expect("write");
        lines
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("toolhost-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn check(tamper: impl Fn(&mut Vec<String>), expect: Result<u64, &str>) {
        let dir = temp_dir();
        let mut lines = write_chain(&dir, 6);
        tamper(&mut lines);
        let _ = std::fs::remove_file(dir.join("audit-20260101-000002.jsonl"));
        std::fs::write(
            dir.join("audit-20260101-000001.jsonl"),
            lines.join("\n") + "\n",
        )
        .expect("rewrite");
        match (verify_dir(&dir), expect) {
            (Ok(report), Ok(records)) => assert_eq!(report.records(), records),
            (Err(err), Err(part)) => assert!(err.to_string().contains(part), "{err}"),
            (res, expect) => panic!("got {res:?}, expected {expect:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tampering_is_detected() {
        check(|_| {}, Ok(6));
        check(
            |l| l[2] = l[2].replace("ok", "OK"),
            Err("audit-20260101-000001.jsonl:4: prev does not match"),
        );
        check(|l| drop(l.remove(3)), Err(":4: prev does not match"));
        check(|l| l.swap(1, 2), Err(":2: prev does not match"));
        check(|l| l[0] = "not json".into(), Err(":1: not a JSON record"));
    }

    #[test]
    fn a_torn_tail_is_reported_not_hidden() {
        let dir = temp_dir();
        write_chain(&dir, 4);
        let path = dir.join("audit-20260101-000002.jsonl");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(r#"{"seq":4,"prev":"#);
        std::fs::write(&path, text).expect("write");
        let report = verify_dir(&dir).expect("chain still verifies");
        assert_eq!(report.records(), 4);
        assert_eq!(
            report.chains[0].torn,
            vec!["audit-20260101-000002.jsonl:3".to_string()]
        );
        let tail = chain_tail(&dir, "").expect("tail");
        assert_eq!(tail.last_seq, Some(3));
        assert!(tail.torn.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A log that holds nothing proves nothing: pointing `verify` at the
    /// wrong (or an empty) directory must not read as "the chain holds".
    #[test]
    fn an_empty_or_missing_directory_does_not_verify() {
        let dir = temp_dir();
        assert!(verify_dir(&dir).is_err(), "empty directory");
        std::fs::write(dir.join("audit-20260101-000001.jsonl"), "").expect("write");
        assert!(verify_dir(&dir).is_err(), "a log file without records");
        assert!(
            verify_dir(&dir.join("missing")).is_err(),
            "missing directory"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Replicas sharing a directory each write their own chain; each is
    /// checked alone, and a break in one names its file.
    #[test]
    fn each_replica_chain_verifies_on_its_own() {
        let dir = temp_dir();
        write_chain(&dir, 4);
        write_named_chain(&dir, "toolhost-5d8f-x2", 6);
        let mut b = write_named_chain(&dir, "b", 2);
        let report = verify_dir(&dir).expect("three chains");
        let seen: Vec<(&str, u64)> = report
            .chains
            .iter()
            .map(|c| (c.replica.as_str(), c.records))
            .collect();
        assert_eq!(seen, vec![("", 4), ("b", 2), ("toolhost-5d8f-x2", 6)]);
        assert_eq!(chain_tail(&dir, "b").expect("tail").last_seq, Some(1));

        b[0] = b[0].replace("ok", "OK");
        let _ = std::fs::remove_file(dir.join("audit-b-20260101-000002.jsonl"));
        std::fs::write(
            dir.join("audit-b-20260101-000001.jsonl"),
            b.join("\n") + "\n",
        )
        .expect("rewrite");
        let err = verify_dir(&dir).expect_err("b's chain is broken");
        assert!(
            err.to_string().contains("audit-b-20260101-000001.jsonl:2"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_names_tell_their_chain() {
        assert_eq!(replica_of("audit-20260101-000001.jsonl"), Some(""));
        assert_eq!(
            replica_of("audit-pod-a-1-20260101-000001.jsonl"),
            Some("pod-a-1")
        );
        assert_eq!(replica_of("audit-20260101-1.jsonl"), None);
        assert_eq!(replica_of("audit.key"), None);
        assert_eq!(replica_of("audit-x-2026010-000001.jsonl"), None);
    }
}
