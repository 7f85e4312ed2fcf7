//! MCP sessions ended by `DELETE /mcp`. A session id is sealed and any
//! replica can take a session up from its id alone, so ending one must be
//! recorded where every replica looks: each keeps the set of ended ids
//! (as digests) fresh from here, off the request path.

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

    /// Forgets ended sessions whose ids have expired anyway.
    pub async fn prune_ended_sessions(&self, now: u64) -> Result<(), StateError> {
        sqlx::query("DELETE FROM ended_sessions WHERE expires <= $1")
            .bind(to_sql(now))
            .execute(&self.pool)
            .await?;
        Ok(())
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
}
