//! Versioned, forward-only schema migrations, run at start-up under the
//! engine's write lock so replicas starting together migrate once.
//!
//! A migration is never edited once released: a change is a new entry at the
//! end. A database newer than this binary is refused rather than guessed at.

use super::{Durable, StateError};

/// (version, name, statements). Both engines run the same statements: the
/// types are those SQLite and PostgreSQL share (`BIGINT`, `TEXT`), lists
/// are JSON text, flags are 0/1.
const MIGRATIONS: &[(i64, &str, &[&str])] = &[
    (
        1,
        "issuer clients, refresh families and consents",
        &[
            "CREATE TABLE clients (
            client_id TEXT PRIMARY KEY,
            client_name TEXT,
            secret_sha256 TEXT,
            redirect_uris TEXT NOT NULL,
            grant_types TEXT NOT NULL,
            scope TEXT NOT NULL,
            token_endpoint_auth_method TEXT NOT NULL,
            created BIGINT NOT NULL,
            dynamic BIGINT NOT NULL,
            registered_from TEXT,
            last_used BIGINT
        )",
            "CREATE INDEX clients_registered_from ON clients (registered_from)",
            // Families of clients known by metadata document have no row in
            // `clients`, so there is no foreign key; deleting a client deletes
            // its families explicitly.
            "CREATE TABLE families (
            family_id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            scopes TEXT NOT NULL,
            groups_json TEXT NOT NULL,
            expires BIGINT NOT NULL,
            current_sha256 TEXT NOT NULL
        )",
            "CREATE INDEX families_client ON families (client_id)",
            "CREATE TABLE consents (
            subject TEXT NOT NULL,
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            PRIMARY KEY (subject, client_id, scope)
        )",
            "CREATE INDEX consents_client ON consents (client_id)",
        ],
    ),
    (
        2,
        "the issuer's signing keys",
        &["CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            active_from_ms BIGINT NOT NULL,
            pkcs8 TEXT NOT NULL,
            public_jwk TEXT NOT NULL
        )"],
    ),
    (
        3,
        "keys every replica shares",
        &["CREATE TABLE shared_keys (
            name TEXT PRIMARY KEY,
            hex TEXT NOT NULL
        )"],
    ),
    (
        4,
        "MCP sessions ended by DELETE",
        &["CREATE TABLE ended_sessions (
            id_sha256 TEXT PRIMARY KEY,
            expires BIGINT NOT NULL
        )"],
    ),
    (
        5,
        "sign-in flows every replica sees",
        &[
            "CREATE TABLE flows (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            body TEXT NOT NULL,
            expires BIGINT NOT NULL,
            range_key TEXT,
            PRIMARY KEY (kind, id)
        )",
            "CREATE INDEX flows_range ON flows (kind, range_key)",
        ],
    ),
    (
        6,
        "MCP session log levels",
        &["CREATE TABLE session_levels (
            id_sha256 TEXT PRIMARY KEY,
            level BIGINT NOT NULL,
            expires BIGINT NOT NULL
        )"],
    ),
    (
        7,
        "the people who sign in",
        &["CREATE TABLE users (
            name TEXT PRIMARY KEY,
            password TEXT NOT NULL,
            groups TEXT NOT NULL,
            created BIGINT NOT NULL,
            updated BIGINT NOT NULL
        )"],
    ),
];

pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// The schema version the database is at (0: empty).
pub(super) async fn version(durable: &Durable) -> Result<i64, StateError> {
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&durable.pool)
        .await?;
    Ok(version.unwrap_or(0))
}

pub(super) async fn run(durable: &Durable) -> Result<(), StateError> {
    run_to(durable, latest()).await
}

/// Brings the schema to `target` (tests start from older versions).
async fn run_to(durable: &Durable, target: i64) -> Result<(), StateError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied BIGINT NOT NULL
        )",
    )
    .execute(&durable.pool)
    .await?;
    let found = version(durable).await?;
    if found > latest() {
        return Err(StateError::TooNew {
            found,
            known: latest(),
        });
    }
    for &(version, name, statements) in MIGRATIONS.iter().filter(|(v, _, _)| *v <= target) {
        // Checked again under the lock: another replica may have just run it.
        let mut tx = durable.write().await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let failed = |source| StateError::Migrate {
            version,
            name,
            source,
        };
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(*statement))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(name)
            .bind(super::to_sql(super::unix_now()))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(version, name, "state database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_grow() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(versions.first(), Some(&1));
    }

    /// A database left at each earlier version (as an older release wrote
    /// it) migrates forward at start and keeps what it held.
    #[tokio::test]
    async fn every_earlier_version_migrates_forward_keeping_its_rows() {
        sqlx::any::install_default_drivers();
        for from in 1..latest() {
            let dir =
                std::env::temp_dir().join(format!("toolhost-migrate-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("dir");
            let url = crate::state::sqlite_url(&dir.join(crate::state::SQLITE_FILE));
            let pool = sqlx::any::AnyPoolOptions::new()
                .connect(&url)
                .await
                .expect("connect");
            let old = Durable {
                pool,
                engine: crate::state::Engine::Sqlite,
            };
            run_to(&old, from).await.expect("older schema");
            assert_eq!(version(&old).await.expect("version"), from);
            // Version 1 has held clients since the first release.
            sqlx::query(
                "INSERT INTO clients (client_id, redirect_uris, grant_types, scope, \
                 token_endpoint_auth_method, created, dynamic) \
                 VALUES ('kept', '[]', '[]', 'read', 'none', 1, 0)",
            )
            .execute(&old.pool)
            .await
            .expect("a row");
            old.pool.close().await;
            let now = Durable::open(&dir, None).await.expect("migrates forward");
            assert_eq!(
                version(&now).await.expect("version"),
                latest(),
                "from {from}"
            );
            let kept: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE client_id = 'kept'")
                    .fetch_one(&now.pool)
                    .await
                    .expect("count");
            assert_eq!(kept, 1, "from {from}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[tokio::test]
    async fn a_database_newer_than_the_binary_is_refused() {
        let scratch = crate::state::testing::scratch().await;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied) VALUES ($1, 'future', 0)",
        )
        .bind(latest() + 1)
        .execute(&scratch.durable.pool)
        .await
        .expect("insert");
        match Durable::open(&scratch.dir, None).await {
            Err(StateError::TooNew { found, .. }) => assert_eq!(found, latest() + 1),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }
}
