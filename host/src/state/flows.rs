//! Short-lived records of the sign-in flows, where every replica sees them:
//! sign-ins in progress, authorization codes (and spent ones, to revoke what
//! a replayed code produced), browser sessions and device grants. A browser
//! that loads the sign-in page from one replica and posts it to another, or
//! a client that redeems its code elsewhere, finds its flow.
//!
//! Each record is a JSON body the issuer defines, under a kind and an id,
//! with an expiry and optionally the client range that started it (for the
//! per-range bound). Taking a record is one `DELETE … RETURNING`, so a
//! single-use record is used once even when two replicas race for it.

use super::{Durable, StateError, to_sql};

/// Why a record was not stored.
#[derive(Debug, PartialEq)]
pub enum FlowRefusal {
    /// `max_total` records of this kind are live.
    Full,
    /// `max_per_range` records of this kind from this range are live.
    RangeFull,
}

impl Durable {
    /// Stores a record of `kind` unless the bounds are reached (counted
    /// over unexpired records, in one write transaction).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_flow(
        &self,
        kind: &str,
        id: &str,
        body: &str,
        expires: u64,
        range: Option<&str>,
        max_total: u64,
        max_per_range: u64,
        now: u64,
    ) -> Result<Result<(), FlowRefusal>, StateError> {
        let bounds = (max_total, max_per_range);
        self.store_flow(kind, id, body, expires, range, bounds, now, false)
            .await
            .map(|stored| stored.map(drop))
    }

    /// Stores a record of `kind` unless one of that id is there already
    /// (whether live or not) or `max_total` are live. Whether it stored:
    /// two replicas creating the same record cannot both succeed.
    pub async fn create_flow(
        &self,
        kind: &str,
        id: &str,
        body: &str,
        expires: u64,
        max_total: u64,
        now: u64,
    ) -> Result<Result<bool, FlowRefusal>, StateError> {
        self.store_flow(
            kind,
            id,
            body,
            expires,
            None,
            (max_total, u64::MAX),
            now,
            true,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_flow(
        &self,
        kind: &str,
        id: &str,
        body: &str,
        expires: u64,
        range: Option<&str>,
        (max_total, max_per_range): (u64, u64),
        now: u64,
        keep_existing: bool,
    ) -> Result<Result<bool, FlowRefusal>, StateError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM flows WHERE kind = $1 AND expires <= $2")
            .bind(kind)
            .bind(to_sql(now))
            .execute(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flows WHERE kind = $1")
            .bind(kind)
            .fetch_one(&mut *tx)
            .await?;
        if super::from_sql(total) >= max_total {
            return Ok(Err(FlowRefusal::Full));
        }
        if let Some(range) = range {
            let mine: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM flows WHERE kind = $1 AND range_key = $2")
                    .bind(kind)
                    .bind(range)
                    .fetch_one(&mut *tx)
                    .await?;
            if super::from_sql(mine) >= max_per_range {
                return Ok(Err(FlowRefusal::RangeFull));
            }
        }
        let statement = if keep_existing {
            "INSERT INTO flows (kind, id, body, expires, range_key) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, id) DO NOTHING"
        } else {
            "INSERT INTO flows (kind, id, body, expires, range_key) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, id) DO UPDATE SET body = $3, expires = $4, range_key = $5"
        };
        let done = sqlx::query(statement)
            .bind(kind)
            .bind(id)
            .bind(body)
            .bind(to_sql(expires))
            .bind(range.map(str::to_string))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() == 1))
    }

    /// The record, if it is live.
    pub async fn flow(&self, kind: &str, id: &str, now: u64) -> Result<Option<String>, StateError> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM flows WHERE kind = $1 AND id = $2 AND expires > $3",
        )
        .bind(kind)
        .bind(id)
        .bind(to_sql(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Removes the record and returns it if it was live: whoever takes it
    /// holds it alone.
    pub async fn take_flow(
        &self,
        kind: &str,
        id: &str,
        now: u64,
    ) -> Result<Option<String>, StateError> {
        let taken: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM flows WHERE kind = $1 AND id = $2 RETURNING body, expires")
                .bind(kind)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(taken
            .filter(|(_, expires)| super::from_sql(*expires) > now)
            .map(|(body, _)| body))
    }

    /// Replaces a live record's body when it is still `expected` (a
    /// compare-and-swap, so two replicas counting attempts on one record
    /// both count). Whether it did.
    pub async fn swap_flow(
        &self,
        kind: &str,
        id: &str,
        expected: &str,
        body: &str,
    ) -> Result<bool, StateError> {
        self.swap_flow_until(kind, id, expected, body, None).await
    }

    /// [`Durable::swap_flow`], also moving the record's expiry when given.
    pub async fn swap_flow_until(
        &self,
        kind: &str,
        id: &str,
        expected: &str,
        body: &str,
        expires: Option<u64>,
    ) -> Result<bool, StateError> {
        let done = sqlx::query(
            "UPDATE flows SET body = $1, expires = COALESCE($5, expires) \
             WHERE kind = $2 AND id = $3 AND body = $4",
        )
        .bind(body)
        .bind(kind)
        .bind(id)
        .bind(expected)
        .bind(expires.map(to_sql))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a record.
    pub async fn drop_flow(&self, kind: &str, id: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM flows WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    #[tokio::test]
    async fn records_are_bounded_single_use_and_expire() {
        let s = scratch().await;
        let d = &s.durable;
        let put = |id: &'static str, range: Option<&'static str>, expires: u64| async move {
            d.put_flow("pending", id, "{}", expires, range, 3, 2, 10)
                .await
        };
        assert_eq!(put("a", Some("r1"), 100).await.ok(), Some(Ok(())));
        assert_eq!(put("b", Some("r1"), 100).await.ok(), Some(Ok(())));
        assert_eq!(
            put("c", Some("r1"), 100).await.ok(),
            Some(Err(FlowRefusal::RangeFull))
        );
        assert_eq!(put("c", Some("r2"), 100).await.ok(), Some(Ok(())));
        assert_eq!(put("d", None, 100).await.ok(), Some(Err(FlowRefusal::Full)));
        assert_eq!(
            d.flow("pending", "a", 10).await.ok(),
            Some(Some("{}".to_string()))
        );
        assert_eq!(
            d.flow("code", "a", 10).await.ok(),
            Some(None),
            "kinds are apart"
        );

        assert!(
            d.swap_flow("pending", "a", "{}", r#"{"n":1}"#)
                .await
                .expect("swap")
        );
        assert!(
            !d.swap_flow("pending", "a", "{}", r#"{"n":2}"#)
                .await
                .expect("stale swap")
        );
        assert_eq!(
            d.take_flow("pending", "a", 10).await.ok(),
            Some(Some(r#"{"n":1}"#.to_string()))
        );
        assert_eq!(
            d.take_flow("pending", "a", 10).await.ok(),
            Some(None),
            "used once"
        );
        assert_eq!(
            d.take_flow("pending", "b", 100).await.ok(),
            Some(None),
            "expired"
        );
        // Expired records make room.
        assert_eq!(
            d.put_flow("pending", "e", "{}", 300, Some("r1"), 3, 2, 200)
                .await
                .ok(),
            Some(Ok(()))
        );
    }
}
