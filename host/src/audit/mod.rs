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

pub use layer::{AuditNote, layer};
pub use record::{Event, Outcome, Record};
pub use verify::{VerifyError, VerifyReport, verify_dir};

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
}

impl AuditSink {
    /// Opens the log at start-up, continuing the chain of the newest file.
    /// With auditing disabled, returns a sink that records nothing.
    pub fn start(
        config: &AuditConfig,
        data_dir: &std::path::Path,
    ) -> Result<(AuditSink, Option<AuditWriter>), AuditError> {
        let dir = config.dir.clone().unwrap_or_else(|| data_dir.join("audit"));
        let key = load_key(&dir).map_err(|source| AuditError::Open {
            dir: dir.clone(),
            source,
        })?;
        let written = Arc::new(AtomicU64::new(0));
        if !config.enabled {
            let inner = Inner {
                tx: None,
                key,
                dropped: AtomicU64::new(0),
                written,
            };
            return Ok((
                AuditSink {
                    inner: Arc::new(inner),
                },
                None,
            ));
        }
        let (tx, task) = writer::start(config, &dir, written.clone())?;
        let inner = Inner {
            tx: Some(tx.clone()),
            key,
            dropped: AtomicU64::new(0),
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
    /// dropped and counted (see [`AuditSink::dropped`]), and an error is logged.
    pub fn record(&self, record: Record) {
        let Some(tx) = &self.inner.tx else {
            return;
        };
        if tx
            .try_send(writer::Command::Append(Box::new(record)))
            .is_err()
        {
            let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
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

fn load_key(dir: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join("digest.key");
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    std::fs::create_dir_all(dir)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::secret_file::write(&path, &key)?;
    Ok(key)
}
