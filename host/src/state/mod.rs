//! Durable state shared by every process that serves one deployment: the
//! embedded issuer's clients, refresh-token families, consents and signing
//! keys.
//!
//! One implementation over sqlx's `Any` driver serves two engines, chosen by
//! configuration: SQLite in the data dir (the default; WAL, so two processes
//! on one host share it without losing writes) and PostgreSQL
//! (`[cluster] postgres_url`, for replicas on several hosts). The SQL is the
//! common dialect of both; where they differ (how a writing transaction
//! serialises) [`Engine`] says so. Nothing above this module sees SQL.
//!
//! Every read-modify-write is one statement (a compare-and-swap in its
//! `WHERE`) or one transaction that holds the engine's write lock, so
//! replicas racing on the same row cannot lose an update.

pub mod budgets;
pub(crate) mod flows;
mod import;
pub(crate) mod issuer;
pub(crate) mod keys;
mod migrate;
pub mod relay;
pub mod secrets;
mod sessions;
pub mod users;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};

/// The file under the data dir that holds the embedded engine's database.
pub const SQLITE_FILE: &str = "toolhost.db";

/// How long a request waits for a database connection (or, in SQLite, the
/// write lock) before it fails with an error rather than hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("opening the state database {what}: {source}")]
    Open { what: String, source: sqlx::Error },
    #[error("state database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("migrating the state database to version {version} ({name}): {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "the state database is at schema version {found}, newer than this toolhost knows ({known}); \
         run the newer release, or restore a backup"
    )]
    TooNew { found: i64, known: i64 },
    #[error("importing {path}: {message}")]
    Import { path: String, message: String },
    #[error("{0} exists already (random ids collide only through a bug)")]
    Exists(String),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("a stored value is malformed: {0}")]
    Corrupt(String),
}

/// A cluster's PostgreSQL: where it is, and how many connections this
/// replica may hold (tool calls need none; sign-ins and the background
/// refreshes do).
#[derive(Debug, Clone, Copy)]
pub struct Postgres<'a> {
    pub url: &'a str,
    pub max_connections: u32,
}

/// Which engine holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The durable state of one deployment.
pub struct Durable {
    pool: AnyPool,
    engine: Engine,
}

impl Durable {
    /// Opens (creating if needed) the embedded database in `data_dir`, or
    /// the PostgreSQL database `postgres` names; brings its schema up to
    /// date; and, on the first start of a data dir that has one, imports the
    /// JSON state file an earlier release wrote.
    pub async fn open(
        data_dir: &Path,
        postgres: Option<Postgres<'_>>,
    ) -> Result<Durable, StateError> {
        install_default_drivers();
        let (url, engine, what) = match postgres {
            Some(pg) => (pg.url.to_string(), Engine::Postgres, redact(pg.url)),
            None => {
                let path = data_dir.join(SQLITE_FILE);
                (
                    sqlite_url(&path),
                    Engine::Sqlite,
                    path.display().to_string(),
                )
            }
        };
        let open_error = |source| StateError::Open {
            what: what.clone(),
            source,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match postgres {
                // One writer at a time anyway; readers run beside it (WAL).
                None => 4,
                Some(pg) => pg.max_connections.max(1),
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url)
            .await
            .map_err(open_error)?;
        if engine == Engine::Sqlite {
            // Persistent in the file; readers then never block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(open_error)?;
        }
        let durable = Durable { pool, engine };
        migrate::run(&durable).await?;
        import::legacy_json(&durable, data_dir).await?;
        import::legacy_users(&durable, data_dir).await?;
        Ok(durable)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StateError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A transaction that holds the engine's write lock from its start, so
    /// what it reads stays true until it commits: SQLite's `BEGIN
    /// IMMEDIATE`, PostgreSQL's transaction-scoped advisory lock.
    async fn write(&self) -> Result<Transaction<'static, Any>, StateError> {
        match self.engine {
            Engine::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }
}

/// PostgreSQL advisory-lock key of toolhost's multi-statement writes
/// ("toolhost" in ASCII, truncated): one lock, as such writes are rare
/// (registrations, sign-ins) and short.
const WRITE_LOCK: i64 = 0x746f_6f6c_686f_7374;

fn sqlite_url(path: &Path) -> String {
    // The URL's path is percent-decoded; these would end it early.
    let encoded = path
        .display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{encoded}?mode=rwc")
}

/// A database URL fit for a log line: the password replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unparseable URL)".to_string(),
    }
}

/// Seconds and counts are `u64` in Rust and `BIGINT` in SQL; "never" is
/// stored as the largest `BIGINT`.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Unix milliseconds now.
pub(crate) fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Durable;

    /// A fresh embedded database in its own temp dir (removed on drop).
    pub(crate) struct Scratch {
        pub(crate) durable: std::sync::Arc<Durable>,
        pub(crate) dir: std::path::PathBuf,
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) async fn scratch() -> Scratch {
        let dir = std::env::temp_dir().join(format!("toolhost-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let durable = Durable::open(&dir, None).await.expect("open");
        Scratch {
            durable: std::sync::Arc::new(durable),
            dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_odd_paths_and_hide_passwords() {
        assert_eq!(
            sqlite_url(Path::new("/data/a?b#c%d/toolhost.db")),
            "sqlite:///data/a%3Fb%23c%25d/toolhost.db?mode=rwc"
        );
        let shown = redact("postgres://toolhost:s3cret@db.internal:5432/toolhost");
        assert!(
            !shown.contains("s3cret") && shown.contains("db.internal"),
            "{shown}"
        );
        assert_eq!(to_sql(u64::MAX), i64::MAX);
        assert_eq!(from_sql(-1), 0);
    }

    #[tokio::test]
    async fn reopening_finds_the_schema_current() {
        let scratch = testing::scratch().await;
        let again = Durable::open(&scratch.dir, None).await.expect("reopen");
        again.ping().await.expect("ping");
        assert_eq!(
            migrate::version(&again).await.expect("version"),
            migrate::latest()
        );
    }
}
