//! The writer task: drains the queue, chains each line to the one before,
//! writes, syncs per the fsync policy, and rotates files by size and day.
//!
//! Group commit: with `fsync = "always"`, everything queued when the writer
//! wakes is written and synced together before any of it counts as written,
//! so a burst costs one fsync, and nothing counted is lost on `kill -9`.
//!
//! Records dropped on a full queue are not silent: the writer logs a chained
//! `records_dropped` record (how many, first and last time) as soon as it has
//! drained what was queued ahead of them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::record::{Event, Record};
use super::{AuditError, verify};
use crate::config::{AuditConfig, FsyncPolicy};

/// The chain's first `prev`: 64 zeros.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most records written per wake-up, so a flood cannot delay the fsync that
/// makes earlier records durable.
const MAX_BATCH: usize = 1024;

/// How long the writer waits after the first queued record before writing,
/// bounding how long a record stays unwritten while cutting fsyncs from one
/// per request to one per burst.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

pub(crate) enum Command {
    Append(Box<Record>),
    /// Sync now if anything is written but not yet synced (`batch` mode's
    /// timer, so a quiet server does not leave its last lines unsynced).
    Flush,
    Shutdown(oneshot::Sender<()>),
}

/// Records dropped since the writer last logged them: noted by the sink
/// when the queue refuses a record, taken by the writer after each drain.
#[derive(Default)]
pub(crate) struct Drops(Mutex<DropSpan>);

#[derive(Default)]
struct DropSpan {
    count: u64,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
}

impl Drops {
    pub(crate) fn note(&self, at: SystemTime) {
        let mut span = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        span.count += 1;
        span.first.get_or_insert(at);
        span.last = Some(at);
    }

    /// The `records_dropped` record for the drops noted so far, if any.
    fn take_record(&self) -> Option<Record> {
        let span = std::mem::take(&mut *self.0.lock().unwrap_or_else(|poison| poison.into_inner()));
        (span.count > 0).then(|| Record {
            count: Some(span.count),
            start_time: span.first,
            end_time: span.last,
            ..Record::event(
                Event::RecordsDropped,
                format!("{} audit records dropped: the queue was full", span.count),
            )
        })
    }
}

struct Writer {
    dir: PathBuf,
    /// Whose chain this is: part of every file name (empty: none named).
    replica: String,
    /// Held for the process's life: one writer per chain.
    _lock: std::fs::File,
    file: std::fs::File,
    file_date: String,
    file_bytes: u64,
    prev: String,
    seq: u64,
    rotate_bytes: u64,
    fsync: FsyncPolicy,
    last_sync: Instant,
    /// Written since the last sync.
    dirty: bool,
    stdout: bool,
}

/// Opens the log and spawns the writer task.
pub(crate) fn start(
    config: &AuditConfig,
    dir: &Path,
    replica: &str,
    written: Arc<AtomicU64>,
    drops: Arc<Drops>,
) -> Result<(mpsc::Sender<Command>, tokio::task::JoinHandle<()>), AuditError> {
    let open_err = |source| AuditError::Open {
        dir: dir.to_path_buf(),
        source,
    };
    crate::secret_file::create_dir(dir).map_err(open_err)?;
    let lock = lock_chain(dir, replica)?;
    let tail = verify::chain_tail(dir, replica).map_err(|error| AuditError::Broken {
        dir: dir.to_path_buf(),
        error,
    })?;
    let today = today();
    let mut writer = Writer {
        dir: dir.to_path_buf(),
        replica: replica.to_string(),
        _lock: lock,
        file: open_new(dir, replica, &today).map_err(open_err)?,
        file_date: today,
        file_bytes: 0,
        prev: tail
            .last_hash
            .clone()
            .unwrap_or_else(|| GENESIS.to_string()),
        seq: tail.last_seq.map_or(0, |s| s + 1),
        rotate_bytes: config.rotate_bytes,
        fsync: config.fsync,
        last_sync: Instant::now(),
        dirty: false,
        stdout: config.stdout,
    };
    if let Some(torn) = &tail.torn {
        // Never rewrite evidence: the torn line stays, the chain continues
        // from the last complete line, and the recovery itself is recorded.
        let record = Record::event(
            Event::AuditRecovered,
            format!("torn last line at {torn}; chain continues"),
        );
        writer.write_all(&[record]).map_err(open_err)?;
        writer.sync().map_err(open_err)?;
    }
    let (tx, rx) = mpsc::channel(config.queue);
    if let FsyncPolicy::Batch(interval) = config.fsync {
        let flush = tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // A full queue means a write (and its sync check) is coming anyway.
                if let Err(mpsc::error::TrySendError::Closed(_)) = flush.try_send(Command::Flush) {
                    return;
                }
            }
        });
    }
    let task = tokio::task::spawn_blocking(move || writer.run(rx, &written, &drops));
    let task = tokio::spawn(async move {
        if let Err(err) = task.await {
            tracing::error!("audit writer stopped: {err}");
        }
    });
    Ok((tx, task))
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Command>, written: &AtomicU64, drops: &Drops) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            let mut shutdown = None;
            match first {
                Command::Append(record) => batch.push(*record),
                Command::Flush => {}
                Command::Shutdown(done) => shutdown = Some(done),
            }
            if !batch.is_empty() && shutdown.is_none() {
                // Linger briefly so records arriving together share one write
                // and one fsync, instead of one each under steady traffic.
                std::thread::sleep(LINGER);
            }
            while shutdown.is_none() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Command::Append(record)) => batch.push(*record),
                    Ok(Command::Flush) => {}
                    Ok(Command::Shutdown(done)) => shutdown = Some(done),
                    Err(_) => break,
                }
            }
            // Drops noted by now are logged after the records queued before them.
            if let Some(record) = drops.take_record() {
                batch.push(record);
            }
            if batch.is_empty() {
                // Woken by the batch timer (or to stop) with nothing to write.
                if self.dirty
                    && let Err(err) = self.sync()
                {
                    tracing::error!(dir = %self.dir.display(), "audit sync failed: {err}");
                }
            } else {
                let n_records = batch.len() as u64;
                let res = self
                    .write_all(&batch)
                    .and_then(|()| self.maybe_sync(shutdown.is_some()));
                batch.clear();
                match res {
                    Ok(()) => {
                        written.fetch_add(n_records, Ordering::Relaxed);
                    }
                    Err(err) => {
                        tracing::error!(dir = %self.dir.display(), "audit write failed: {err}");
                    }
                }
            }
            if let Some(done) = shutdown {
                let _ = done.send(());
                return;
            }
        }
        let _ = self.sync();
    }

    fn write_all(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut buffer = Vec::with_capacity(records.len() * 512);
        let today = today();
        for record in records {
            self.rotate_if_needed(buffer.len() as u64, &today)?;
            let start = buffer.len();
            record.write_json(self.seq, &self.prev, &mut buffer);
            let text = &buffer[start..];
            self.prev = hex::encode(Sha256::digest(text));
            self.seq += 1;
            if self.stdout {
                println!("{}", String::from_utf8_lossy(text));
            }
            buffer.push(b'\n');
            if self.file_bytes + buffer.len() as u64 >= self.rotate_bytes {
                self.file.write_all(&buffer)?;
                self.file_bytes += buffer.len() as u64;
                buffer.clear();
            }
        }
        self.file.write_all(&buffer)?;
        self.file_bytes += buffer.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Starts a new file when the current one is full or the day changed;
    /// the chain continues across files.
    fn rotate_if_needed(&mut self, pending: u64, today: &str) -> std::io::Result<()> {
        if self.file_bytes + pending < self.rotate_bytes && today == self.file_date {
            return Ok(());
        }
        self.sync()?;
        self.file = open_new(&self.dir, &self.replica, today)?;
        self.file_date = today.to_string();
        self.file_bytes = 0;
        Ok(())
    }

    fn maybe_sync(&mut self, force: bool) -> std::io::Result<()> {
        match self.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::Batch(interval) if force || self.last_sync.elapsed() >= interval => {
                self.sync()
            }
            FsyncPolicy::Batch(_) | FsyncPolicy::Never => Ok(()),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.last_sync = Instant::now();
        self.dirty = false;
        self.file.sync_data()
    }
}

/// Two processes appending to one chain would interleave it into lines
/// that no longer verify; the second is refused at start instead. The lock
/// is the kernel's, so a crashed writer never leaves it held.
fn lock_chain(dir: &Path, replica: &str) -> Result<std::fs::File, AuditError> {
    let path = dir.join(format!(".{}lock", verify::file_prefix(replica)));
    let open_err = |source| AuditError::Open {
        dir: dir.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(open_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AuditError::InUse {
            dir: dir.to_path_buf(),
            replica: replica.to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(open_err(source)),
    }
}

/// Opens the next file of `replica`'s chain for `date`:
/// `audit-[REPLICA-]YYYYMMDD-NNNNNN.jsonl`, so names sort in chain order.
fn open_new(dir: &Path, replica: &str, date: &str) -> std::io::Result<std::fs::File> {
    let prefix = format!("{}{date}-", verify::file_prefix(replica));
    let mut highest = 0u32;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            highest = highest.max(n);
        }
    }
    let path = dir.join(format!("{prefix}{:06}.jsonl", highest + 1));
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true).append(true);
    #[cfg(unix)]
    {
        // Owner only, whatever the umask: the log names callers and tools.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path)?;
    // Make the new name itself durable, so a crash cannot lose the file.
    if let Ok(dir_handle) = std::fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(file)
}

fn today() -> String {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    stamp.get(..10).unwrap_or("1970-01-01").replace('-', "")
}
