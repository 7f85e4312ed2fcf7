//! The tamper-evident audit log: one JSON line per API call and per security
//! event, each carrying the SHA-256 of the line before it, written by one
//! task from a bounded queue so the request path never waits on the disk.
//!
//! - `record.rs`: what a line holds and how it is written.
//! - `writer.rs`: the writer task, rotation, fsync policy, chain continuity.
//! - `verify.rs`: `toolhost audit verify`, reporting the first broken line.
//! - `layer.rs`: the axum middleware that audits every HTTP request.
//!
//! **Invariant:** arguments and secrets never reach the log; arguments are
//! represented by a keyed HMAC so equal arguments are linkable, not readable.

mod layer;
mod record;
mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

pub use layer::{AuditBatch, AuditNote, layer};
pub use record::{Event, Outcome, Record};
pub use verify::{ChainReport, VerifyError, VerifyReport, verify_dir};

use crate::config::AuditConfig;

/// Handle to the audit log, cheap to clone; lives as long as the server.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Option<mpsc::Sender<writer::Command>>,
    /// Key for argument digests; per data dir, so digests are comparable
    /// across restarts but meaningless without the key.
    key: [u8; 32],
    dropped: AtomicU64,
    /// Drops not yet logged as a `records_dropped` record.
    drops: Arc<writer::Drops>,
    written: Arc<AtomicU64>,
}

/// Owns the writer task; dropping it flushes what is queued and stops it.
pub struct AuditWriter {
    task: Option<tokio::task::JoinHandle<()>>,
    tx: mpsc::Sender<writer::Command>,
}

impl AuditWriter {
    /// Flushes everything queued so far and stops the writer.
    pub async fn shutdown(mut self) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if self
            .tx
            .send(writer::Command::Shutdown(done_tx))
            .await
            .is_ok()
        {
            let _ = done_rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Errors opening the audit log at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open audit log in {dir}: {source}")]
    Open {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log in {dir} does not verify, refusing to append to a broken chain: {error}")]
    Broken { dir: PathBuf, error: VerifyError },
    #[error(
        "another toolhost process is writing the audit chain {chain} in {dir}; \
         give each process its own cluster.replica_id (or audit.dir)",
        chain = if replica.is_empty() { "(unnamed)" } else { replica.as_str() }
    )]
    InUse { dir: PathBuf, replica: String },
}

impl AuditSink {
    /// Opens the log at start-up, continuing the chain of the newest file.
    /// With auditing disabled, returns a sink that records nothing.
    /// `replica` names this process's chain (empty: the unnamed one);
    /// `key` is the deployment's argument-digest key, the same in every
    /// replica so digests compare across them.
    pub fn start(
        config: &AuditConfig,
        data_dir: &std::path::Path,
        replica: &str,
        key: [u8; 32],
    ) -> Result<(AuditSink, Option<AuditWriter>), AuditError> {
        let dir = config.dir.clone().unwrap_or_else(|| data_dir.join("audit"));
        let written = Arc::new(AtomicU64::new(0));
        let drops = Arc::new(writer::Drops::default());
        if !config.enabled {
            let inner = Inner {
                tx: None,
                key,
                dropped: AtomicU64::new(0),
                drops,
                written,
            };
            return Ok((
                AuditSink {
                    inner: Arc::new(inner),
                },
                None,
            ));
        }
        let (tx, task) = writer::start(config, &dir, replica, written.clone(), drops.clone())?;
        let inner = Inner {
            tx: Some(tx.clone()),
            key,
            dropped: AtomicU64::new(0),
            drops,
            written,
        };
        let sink = AuditSink {
            inner: Arc::new(inner),
        };
        Ok((
            sink,
            Some(AuditWriter {
                task: Some(task),
                tx,
            }),
        ))
    }

    /// Queues a record. Never blocks: when the queue is full the record is
    /// dropped and counted (see [`AuditSink::dropped`]), an error is logged,
    /// and the writer logs a chained `records_dropped` record once it drains.
    pub fn record(&self, record: Record) {
        let Some(tx) = &self.inner.tx else {
            return;
        };
        if tx
            .try_send(writer::Command::Append(Box::new(record)))
            .is_err()
        {
            let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.inner.drops.note(std::time::SystemTime::now());
            // Wake an idle writer to log the drop. If the queue is still
            // full this fails, but then the writer has records to drain and
            // logs the drop after them.
            let _ = tx.try_send(writer::Command::Flush);
            tracing::error!(dropped = n, "audit queue full or closed; record dropped");
        }
    }

    /// Records a security event (plugin loaded, reload failed, …).
    pub fn event(&self, event: Event, detail: impl Into<String>) {
        self.record(Record::event(event, detail.into()));
    }

    /// A keyed digest of a call's arguments: equal arguments give equal
    /// digests, but the arguments cannot be read back.
    pub fn digest_arguments(&self, arguments: &serde_json::Value) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.key)
            .expect("invariant: HMAC takes any key length");
        mac.update(arguments.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Records written to disk so far.
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Records waiting for the writer now: a backlog that grows means the
    /// disk is not keeping up, before anything is dropped.
    pub fn queue_depth(&self) -> u64 {
        self.inner
            .tx
            .as_ref()
            .map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64)
    }
}

/// The argument-digest key an earlier release kept in the audit directory,
/// if there is one: the deployment's shared key starts as it, so digests
/// stay comparable across the upgrade.
pub fn legacy_key(config: &AuditConfig, data_dir: &std::path::Path) -> Option<[u8; 32]> {
    let dir = config.dir.clone().unwrap_or_else(|| data_dir.join("audit"));
    let bytes = std::fs::read(dir.join("digest.key")).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        std::env::temp_dir().join(format!("toolhost-{label}-{}", uuid::Uuid::new_v4()))
    }

    fn lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .expect("read log")
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("JSON line"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_leaves_a_chained_records_dropped_record() {
        let dir = temp_dir("audit-drop");
        let mut config = AuditConfig::default();
        config.dir = Some(dir.clone());
        config.queue = 2;
        let (sink, writer) = AuditSink::start(&config, &dir, "", [7; 32]).expect("start");
        let writer = writer.expect("auditing is on");
        // The writer lingers after its first record, so a tight loop
        // outruns a queue of two within a few records.
        let mut sent = 0u64;
        while sink.dropped() == 0 && sent < 1_000_000 {
            sink.event(Event::ConfigReloaded, format!("record {sent}"));
            sent += 1;
        }
        // A few more, so drops and accepted records interleave.
        for i in 0..50 {
            sink.event(Event::ConfigReloaded, format!("more {i}"));
            sent += 1;
        }
        let dropped = sink.dropped();
        assert!(dropped > 0, "the queue never filled");
        writer.shutdown().await;

        let report = verify_dir(&dir).expect("the chain verifies with the drop records in it");
        let all = lines(&dir);
        let drops: Vec<&serde_json::Value> = all
            .iter()
            .filter(|r| r["type"] == "records_dropped")
            .collect();
        assert!(!drops.is_empty(), "no records_dropped record in {all:?}");
        let counted: u64 = drops.iter().filter_map(|r| r["count"].as_u64()).sum();
        assert_eq!(counted, dropped, "the drop records account for every drop");
        for record in &drops {
            let start = record["start_time"].as_str().expect("start_time");
            let end = record["end_time"].as_str().expect("end_time");
            assert!(start <= end, "{record}");
            assert_eq!(record["activity"], "security_event");
        }
        assert_eq!(
            report.records(),
            sent - dropped + drops.len() as u64,
            "every record is either in the log or counted as dropped"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_log_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        crate::secret_file::test_umask_022();
        let data_dir = temp_dir("audit-modes");
        let dir = data_dir.join("audit");
        let mut config = AuditConfig::default();
        config.dir = Some(dir.clone());
        let (sink, writer) = AuditSink::start(&config, &data_dir, "", [7; 32]).expect("start");
        sink.event(Event::ServerStarted, "test");
        writer.expect("auditing is on").shutdown().await;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir), 0o700, "audit directory");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        assert!(files >= 2, "the chain's lock and a log file");
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    /// Two writers on one chain would interleave it beyond verifying: the
    /// second is refused and says how to fix it; another replica's chain in
    /// the same directory is fine, and the lock goes with its writer.
    #[tokio::test]
    async fn one_writer_per_chain() {
        let dir = temp_dir("audit-lock");
        let mut config = AuditConfig::default();
        config.dir = Some(dir.clone());
        let (_sink, first) = AuditSink::start(&config, &dir, "a", [7; 32]).expect("first writer");
        let err = AuditSink::start(&config, &dir, "a", [7; 32])
            .err()
            .expect("a second writer of chain a is refused");
        assert!(err.to_string().contains("cluster.replica_id"), "{err}");
        let (_other, second) = AuditSink::start(&config, &dir, "b", [7; 32]).expect("chain b");
        first.expect("on").shutdown().await;
        second.expect("on").shutdown().await;
        let (_again, third) = AuditSink::start(&config, &dir, "a", [7; 32]).expect("lock released");
        third.expect("on").shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
