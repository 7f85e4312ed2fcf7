//! MCP sessions ended by `DELETE /mcp`. A session id is sealed and any
//! replica can take a session up from its id alone, so ending one must be
//! recorded where every replica looks: each keeps the set of ended ids
//! (as digests) fresh from here, off the request path.
//!
//! The log level a client sets (`logging/setLevel`) is kept here too, so a
//! replica that takes the session up later, or after a restart, forwards
//! the plugin logs the client asked for.

use super::{Durable, StateError, to_sql};

impl Durable {
    /// Records that the session whose id has this digest ended; kept until
    /// its id would have expired anyway (unix seconds).
    pub async fn end_session(&self, id_sha256: &str, expires: u64) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO ended_sessions (id_sha256, expires) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id_sha256)
        .bind(to_sql(expires))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Digests of the ended sessions whose ids have not expired by `now`
    /// (a read: every replica asks every few seconds).
    pub async fn ended_sessions(&self, now: u64) -> Result<Vec<String>, StateError> {
        Ok(
            sqlx::query_scalar("SELECT id_sha256 FROM ended_sessions WHERE expires > $1")
                .bind(to_sql(now))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Forgets ended sessions and log levels whose ids have expired anyway.
    pub async fn prune_ended_sessions(&self, now: u64) -> Result<(), StateError> {
        for statement in [
            "DELETE FROM ended_sessions WHERE expires <= $1",
            "DELETE FROM session_levels WHERE expires <= $1",
        ] {
            sqlx::query(statement)
                .bind(to_sql(now))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Records the log level (a severity rank) of the session whose id has
    /// this digest, until the id expires (unix seconds).
    pub async fn set_session_level(
        &self,
        id_sha256: &str,
        level: u8,
        expires: u64,
    ) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO session_levels (id_sha256, level, expires) VALUES ($1, $2, $3) \
             ON CONFLICT (id_sha256) DO UPDATE SET level = excluded.level",
        )
        .bind(id_sha256)
        .bind(i64::from(level))
        .bind(to_sql(expires))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The log level recorded for the session, if its client set one.
    pub async fn session_level(&self, id_sha256: &str) -> Result<Option<u8>, StateError> {
        let level: Option<i64> =
            sqlx::query_scalar("SELECT level FROM session_levels WHERE id_sha256 = $1")
                .bind(id_sha256)
                .fetch_optional(&self.pool)
                .await?;
        Ok(level.and_then(|l| u8::try_from(l).ok()))
    }
}

#[cfg(test)]
mod tests {
    use crate::state::testing::scratch;

    #[tokio::test]
    async fn ended_sessions_are_kept_until_their_ids_expire() {
        let s = scratch().await;
        s.durable.end_session("aa", 100).await.expect("end");
        s.durable
            .end_session("aa", 100)
            .await
            .expect("twice is fine");
        s.durable.end_session("bb", 200).await.expect("end");
        let mut live = s.durable.ended_sessions(50).await.expect("read");
        live.sort();
        assert_eq!(live, vec!["aa".to_string(), "bb".to_string()]);
        assert_eq!(
            s.durable.ended_sessions(150).await.expect("read"),
            vec!["bb".to_string()]
        );
    }

    #[tokio::test]
    async fn a_log_level_is_kept_until_its_session_expires() {
        let s = scratch().await;
        assert_eq!(s.durable.session_level("aa").await.expect("read"), None);
        s.durable
            .set_session_level("aa", 3, 100)
            .await
            .expect("set");
        s.durable
            .set_session_level("aa", 5, 100)
            .await
            .expect("reset");
        assert_eq!(s.durable.session_level("aa").await.expect("read"), Some(5));
        s.durable.prune_ended_sessions(100).await.expect("prune");
        assert_eq!(s.durable.session_level("aa").await.expect("read"), None);
    }
}
