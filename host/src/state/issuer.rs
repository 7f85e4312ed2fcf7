//! The embedded issuer's tables: registered clients, refresh-token families
//! (one per sign-in) and remembered consents. Secrets are stored only as
//! SHA-256 digests (they are random 256-bit values, so a fast hash loses
//! nothing). Dynamic clients that are never (or no longer) used expire, so
//! anonymous registrations cannot grow the tables for good.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Durable, StateError, from_sql, to_sql};

/// Every dynamic registration counts against this, whoever made it.
const MAX_DYNAMIC_CLIENTS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub client_name: Option<String>,
    /// Confidential clients only.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// The scopes this client may be granted.
    pub scope: String,
    pub token_endpoint_auth_method: String,
    /// Unix seconds.
    pub created: u64,
    /// Registered through `/register` rather than by an operator.
    #[serde(default)]
    pub dynamic: bool,
    /// Dynamic clients: the address range that registered it (an IPv4
    /// address or an IPv6 /64), for the per-range cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_from: Option<String>,
    /// Dynamic clients: unix seconds of the last sign-in or refresh; none
    /// yet means the client never completed a sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
}

/// How long dynamically registered clients live. Operator-made clients
/// never expire.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A client that never completed a sign-in: this long after registering.
    pub unused: Duration,
    /// A client that did: this long after its last sign-in or refresh.
    pub idle: Duration,
}

impl Client {
    /// Unix seconds at which this client expires, if it can.
    pub fn expires(&self, lifetimes: &Lifetimes) -> Option<u64> {
        if !self.dynamic {
            return None;
        }
        Some(match self.last_used {
            None => self.created.saturating_add(lifetimes.unused.as_secs()),
            Some(used) => used.saturating_add(lifetimes.idle.as_secs()),
        })
    }

    pub fn expired(&self, lifetimes: &Lifetimes, now: u64) -> bool {
        self.expires(lifetimes).is_some_and(|at| at <= now)
    }
}

/// One sign-in's chain of refresh tokens. Only the newest token is valid;
/// presenting an older one means it was stolen (or replayed), and the whole
/// family is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub client_id: String,
    pub subject: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix seconds after which no token of the family is accepted.
    pub expires: u64,
    pub current_sha256: String,
}

/// What redeeming a refresh token found.
#[derive(Debug)]
pub enum Rotation {
    /// The token was the family's newest; the family now expects the new one.
    Rotated,
    /// An older token of the family: someone holds a copy. The family is gone.
    Reused(Family),
    /// The family had expired; it is gone.
    Expired,
    /// No such family for this client: revoked, expired earlier, or never issued.
    Gone,
}

/// Why a dynamic registration was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// [`MAX_DYNAMIC_CLIENTS`] are registered.
    Full,
    /// The address range holds its cap of live clients; the soonest of them
    /// expires then (unix seconds).
    RangeFull { next_expiry: Option<u64> },
}

/// The SQL form of [`Client::expires`]: dynamic clients only.
const EXPIRES: &str = "CASE WHEN last_used IS NULL THEN created + $1 ELSE last_used + $2 END";

const CLIENT_COLUMNS: &str = "client_id, client_name, secret_sha256, redirect_uris, grant_types, \
     scope, token_endpoint_auth_method, created, dynamic, registered_from, last_used";

impl Durable {
    /// The client `client_id`, unless it has expired.
    pub async fn client(
        &self,
        client_id: &str,
        lifetimes: &Lifetimes,
        now: u64,
    ) -> Result<Option<Client>, StateError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        )))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        let client = row.as_ref().map(client_from_row).transpose()?;
        Ok(client.filter(|c| !c.expired(lifetimes, now)))
    }

    /// Every stored client (expired ones too, until swept), by id.
    pub async fn clients(&self) -> Result<Vec<Client>, StateError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Adds an operator's client (never expires).
    pub async fn insert_client(&self, client: &Client) -> Result<(), StateError> {
        if !insert_client(&mut *self.pool.acquire().await?, client).await? {
            return Err(StateError::Exists(client.client_id.clone()));
        }
        Ok(())
    }

    /// Registers a dynamic client if the caps allow, in one transaction that
    /// first sweeps expired clients: the count and the insert cannot
    /// interleave with another replica's.
    pub async fn register_client(
        &self,
        client: &Client,
        lifetimes: &Lifetimes,
        per_range: u64,
    ) -> Result<Result<(), Refusal>, StateError> {
        let mut tx = self.write().await?;
        sweep(&mut tx, lifetimes, client.created).await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE dynamic = 1")
            .fetch_one(&mut *tx)
            .await?;
        if from_sql(total) >= MAX_DYNAMIC_CLIENTS {
            return Ok(Err(Refusal::Full));
        }
        if let Some(range) = &client.registered_from
            && per_range > 0
        {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*), MIN({EXPIRES}) FROM clients \
                 WHERE registered_from = $3 AND dynamic = 1"
            )))
            .bind(to_sql(lifetimes.unused.as_secs()))
            .bind(to_sql(lifetimes.idle.as_secs()))
            .bind(range.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let mine: i64 = row.try_get(0)?;
            let next: Option<i64> = row.try_get(1)?;
            if from_sql(mine) >= per_range {
                return Ok(Err(Refusal::RangeFull {
                    next_expiry: next.map(from_sql),
                }));
            }
        }
        if !insert_client(&mut tx, client).await? {
            return Err(StateError::Exists(client.client_id.clone()));
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Removes expired dynamic clients with their refresh families and
    /// consents; returns how many clients went.
    pub async fn sweep_clients(&self, lifetimes: &Lifetimes, now: u64) -> Result<u64, StateError> {
        // A read first, so a quiet timer tick takes no write lock.
        let any: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT client_id FROM clients WHERE dynamic = 1 AND {EXPIRES} <= $3 LIMIT 1"
        )))
        .bind(to_sql(lifetimes.unused.as_secs()))
        .bind(to_sql(lifetimes.idle.as_secs()))
        .bind(to_sql(now))
        .fetch_optional(&self.pool)
        .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let removed = sweep(&mut tx, lifetimes, now).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Remembers that `subject` agreed to `scopes` for `client_id` (added
    /// to what they agreed to before).
    pub async fn add_consent(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        for scope in scopes {
            sqlx::query(
                "INSERT INTO consents (subject, client_id, scope) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(subject)
            .bind(client_id)
            .bind(scope.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether `subject` agreed to every one of `scopes` for `client_id`.
    pub async fn consented(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<bool, StateError> {
        let granted: BTreeSet<String> =
            sqlx::query_scalar("SELECT scope FROM consents WHERE subject = $1 AND client_id = $2")
                .bind(subject)
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        Ok(scopes.iter().all(|scope| granted.contains(scope)))
    }

    /// A sign-in's family, as it stands.
    pub async fn family(&self, family_id: &str) -> Result<Option<Family>, StateError> {
        let row = sqlx::query(
            "SELECT client_id, subject, scopes, groups_json, expires, current_sha256 \
             FROM families WHERE family_id = $1",
        )
        .bind(family_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(family_from_row).transpose()
    }

    /// Starts a family and marks its client used, in one transaction. Ids
    /// are random, so one that exists already is a bug: the insert fails
    /// rather than overwrites.
    pub async fn create_family(
        &self,
        family_id: &str,
        family: &Family,
        now: u64,
    ) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        if !insert_family(&mut tx, family_id, family).await? {
            return Err(StateError::Exists(family_id.to_string()));
        }
        mark_used(&mut tx, &family.client_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Redeems a refresh token of `client_id`'s family as one
    /// compare-and-swap: when `presented_sha256` is the family's current
    /// digest and the family is unexpired, it becomes `new_sha256`.
    /// Anything else changes nothing but for two cases that end the family:
    /// an older digest (reuse) and expiry. A missing family is never
    /// recreated, so a refresh racing a revocation cannot bring the sign-in
    /// back. Of two replicas presenting the same token, the database lets
    /// one `UPDATE` match; the other finds the digest moved on (reuse).
    ///
    /// The digest comparison is the database's, not constant-time; it
    /// compares digests of 256-bit random tokens, which tell an attacker
    /// timing it nothing about a token.
    pub async fn rotate(
        &self,
        family_id: &str,
        client_id: &str,
        presented_sha256: &str,
        new_sha256: &str,
        now: u64,
    ) -> Result<Rotation, StateError> {
        let mut tx = self.pool.begin().await?;
        let rotated = sqlx::query(
            "UPDATE families SET current_sha256 = $1 \
             WHERE family_id = $2 AND client_id = $3 AND current_sha256 = $4 AND expires > $5",
        )
        .bind(new_sha256)
        .bind(family_id)
        .bind(client_id)
        .bind(presented_sha256)
        .bind(to_sql(now))
        .execute(&mut *tx)
        .await?;
        let rotation = if rotated.rows_affected() == 1 {
            mark_used(&mut tx, client_id, now).await?;
            Rotation::Rotated
        } else {
            let ended = sqlx::query(
                "DELETE FROM families WHERE family_id = $1 AND client_id = $2 \
                 RETURNING client_id, subject, scopes, groups_json, expires, current_sha256",
            )
            .bind(family_id)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
            match ended.as_ref().map(family_from_row).transpose()? {
                None => Rotation::Gone,
                Some(family) if family.expires <= now => Rotation::Expired,
                Some(family) => Rotation::Reused(family),
            }
        };
        tx.commit().await?;
        Ok(rotation)
    }

    /// Ends family `family_id` (only if it is `client_id`'s, when given).
    /// Whether it existed.
    pub async fn revoke_family(
        &self,
        family_id: &str,
        client_id: Option<&str>,
    ) -> Result<bool, StateError> {
        let done = match client_id {
            Some(client_id) => {
                sqlx::query("DELETE FROM families WHERE family_id = $1 AND client_id = $2")
                    .bind(family_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM families WHERE family_id = $1")
                    .bind(family_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    /// How many clients, families and consent rows are stored.
    #[cfg(test)]
    pub(super) async fn counts(&self) -> Result<(u64, u64, u64), StateError> {
        let mut counts = [0u64; 3];
        for (count, table) in counts.iter_mut().zip([
            "SELECT COUNT(*) FROM clients",
            "SELECT COUNT(*) FROM families",
            "SELECT COUNT(*) FROM consents",
        ]) {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(table))
                .fetch_one(&self.pool)
                .await?;
            *count = from_sql(n);
        }
        Ok((counts[0], counts[1], counts[2]))
    }
}

/// Inserts `client` unless its id is taken; whether it was inserted.
pub(super) async fn insert_client(
    conn: &mut sqlx::AnyConnection,
    client: &Client,
) -> Result<bool, StateError> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO clients ({CLIENT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
    )))
    .bind(client.client_id.as_str())
    .bind(client.client_name.clone())
    .bind(client.secret_sha256.clone())
    .bind(to_json(&client.redirect_uris))
    .bind(to_json(&client.grant_types))
    .bind(client.scope.as_str())
    .bind(client.token_endpoint_auth_method.as_str())
    .bind(to_sql(client.created))
    .bind(i64::from(client.dynamic))
    .bind(client.registered_from.clone())
    .bind(client.last_used.map(to_sql))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a family unless its id is taken; whether it was inserted.
pub(super) async fn insert_family(
    conn: &mut sqlx::AnyConnection,
    family_id: &str,
    family: &Family,
) -> Result<bool, StateError> {
    let done = sqlx::query(
        "INSERT INTO families \
         (family_id, client_id, subject, scopes, groups_json, expires, current_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(family_id)
    .bind(family.client_id.as_str())
    .bind(family.subject.as_str())
    .bind(to_json(&family.scopes))
    .bind(to_json(&family.groups))
    .bind(to_sql(family.expires))
    .bind(family.current_sha256.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes expired dynamic clients and what they hold, inside `tx`.
async fn sweep(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    lifetimes: &Lifetimes,
    now: u64,
) -> Result<u64, StateError> {
    let expired: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "DELETE FROM clients WHERE dynamic = 1 AND {EXPIRES} <= $3 RETURNING client_id"
    )))
    .bind(to_sql(lifetimes.unused.as_secs()))
    .bind(to_sql(lifetimes.idle.as_secs()))
    .bind(to_sql(now))
    .fetch_all(&mut **tx)
    .await?;
    for client_id in &expired {
        for statement in [
            "DELETE FROM families WHERE client_id = $1",
            "DELETE FROM consents WHERE client_id = $1",
        ] {
            sqlx::query(statement)
                .bind(client_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(expired.len() as u64)
}

/// A dynamic client that signed someone in (or refreshed) is in use, and
/// does not expire for a while; stamped in the same transaction as the token.
async fn mark_used(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    client_id: &str,
    now: u64,
) -> Result<(), StateError> {
    sqlx::query("UPDATE clients SET last_used = $1 WHERE client_id = $2 AND dynamic = 1")
        .bind(to_sql(now))
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn from_json(column: &str, text: &str) -> Result<Vec<String>, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::Corrupt(format!("{column}: {e}")))
}

fn client_from_row(row: &AnyRow) -> Result<Client, StateError> {
    let dynamic: i64 = row.try_get("dynamic")?;
    let last_used: Option<i64> = row.try_get("last_used")?;
    Ok(Client {
        client_id: row.try_get("client_id")?,
        client_name: row.try_get("client_name")?,
        secret_sha256: row.try_get("secret_sha256")?,
        redirect_uris: from_json("redirect_uris", &row.try_get::<String, _>("redirect_uris")?)?,
        grant_types: from_json("grant_types", &row.try_get::<String, _>("grant_types")?)?,
        scope: row.try_get("scope")?,
        token_endpoint_auth_method: row.try_get("token_endpoint_auth_method")?,
        created: from_sql(row.try_get("created")?),
        dynamic: dynamic != 0,
        registered_from: row.try_get("registered_from")?,
        last_used: last_used.map(from_sql),
    })
}

fn family_from_row(row: &AnyRow) -> Result<Family, StateError> {
    Ok(Family {
        client_id: row.try_get("client_id")?,
        subject: row.try_get("subject")?,
        scopes: from_json("scopes", &row.try_get::<String, _>("scopes")?)?,
        groups: from_json("groups_json", &row.try_get::<String, _>("groups_json")?)?,
        expires: from_sql(row.try_get("expires")?),
        current_sha256: row.try_get("current_sha256")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    fn dynamic(id: &str, created: u64, last_used: Option<u64>) -> Client {
        Client {
            client_id: id.into(),
            client_name: None,
            secret_sha256: None,
            redirect_uris: vec!["http://localhost/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scope: "read".into(),
            token_endpoint_auth_method: "none".into(),
            created,
            dynamic: true,
            registered_from: Some("192.0.2.1".into()),
            last_used,
        }
    }

    fn family(client_id: &str, expires: u64, digest: &str) -> Family {
        Family {
            client_id: client_id.into(),
            subject: "alice".into(),
            scopes: vec!["read".into()],
            groups: vec!["dev".into()],
            expires,
            current_sha256: digest.into(),
        }
    }

    const LIFETIMES: Lifetimes = Lifetimes {
        unused: Duration::from_secs(100),
        idle: Duration::from_secs(1000),
    };

    #[tokio::test]
    async fn clients_round_trip_and_ids_are_never_reused() {
        let s = scratch().await;
        let client = Client {
            client_name: Some("ci".into()),
            secret_sha256: Some("ab".into()),
            dynamic: false,
            registered_from: None,
            ..dynamic("op", 5, None)
        };
        s.durable.insert_client(&client).await.expect("insert");
        let read = s.durable.client("op", &LIFETIMES, u64::MAX).await;
        assert_eq!(read.expect("read"), Some(client.clone()));
        assert!(matches!(
            s.durable.insert_client(&client).await,
            Err(StateError::Exists(_))
        ));
        assert_eq!(
            s.durable.client("nope", &LIFETIMES, 0).await.ok(),
            Some(None)
        );
    }

    #[tokio::test]
    async fn unused_and_idle_dynamic_clients_expire_with_what_they_hold() {
        let s = scratch().await;
        let d = &s.durable;
        for client in [
            dynamic("never", 0, None),
            dynamic("idle", 0, Some(50)),
            dynamic("recent", 0, Some(900)),
            Client {
                dynamic: false,
                ..dynamic("operator", 0, None)
            },
        ] {
            d.insert_client(&client).await.expect("insert");
        }
        d.create_family("f", &family("idle", u64::MAX, "d"), 50)
            .await
            .expect("family");
        d.add_consent("alice", "never", &["read".into()])
            .await
            .expect("consent");
        // Hidden at lookup from the moment it expires, swept later.
        assert!(
            d.client("never", &LIFETIMES, 99)
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            d.client("never", &LIFETIMES, 100)
                .await
                .expect("read")
                .is_none()
        );
        assert_eq!(d.sweep_clients(&LIFETIMES, 99).await.ok(), Some(0));
        assert_eq!(d.sweep_clients(&LIFETIMES, 100).await.ok(), Some(1));
        assert_eq!(d.counts().await.ok(), Some((3, 1, 0)));
        assert_eq!(d.sweep_clients(&LIFETIMES, 1050).await.ok(), Some(1));
        assert!(d.family("f").await.expect("family").is_none());
        assert_eq!(d.sweep_clients(&LIFETIMES, u64::MAX).await.ok(), Some(1));
        assert_eq!(
            d.counts().await.ok(),
            Some((1, 0, 0)),
            "only dynamic clients go"
        );
    }

    #[tokio::test]
    async fn registrations_are_capped_per_range_and_expired_ones_make_room() {
        let s = scratch().await;
        let d = &s.durable;
        for (i, id) in ["a", "b"].iter().enumerate() {
            let outcome = d
                .register_client(&dynamic(id, i as u64, None), &LIFETIMES, 2)
                .await
                .expect("register");
            assert_eq!(outcome, Ok(()));
        }
        let refused = d
            .register_client(&dynamic("c", 10, None), &LIFETIMES, 2)
            .await
            .expect("register");
        assert_eq!(
            refused,
            Err(Refusal::RangeFull {
                next_expiry: Some(100)
            })
        );
        // Another range is not affected; once "a" expires, "c" fits.
        let elsewhere = Client {
            registered_from: Some("198.51.100.1".into()),
            ..dynamic("x", 10, None)
        };
        assert_eq!(
            d.register_client(&elsewhere, &LIFETIMES, 2).await.ok(),
            Some(Ok(()))
        );
        let later = d
            .register_client(&dynamic("c", 100, None), &LIFETIMES, 2)
            .await
            .expect("register");
        assert_eq!(later, Ok(()));
        assert!(d.client("a", &LIFETIMES, 0).await.expect("read").is_none());
    }

    #[tokio::test]
    async fn consents_accumulate() {
        let s = scratch().await;
        let d = &s.durable;
        let (read, write) = ("read".to_string(), "write".to_string());
        d.add_consent("alice", "c1", std::slice::from_ref(&read))
            .await
            .expect("consent");
        d.add_consent("alice", "c1", &[read.clone(), write.clone()])
            .await
            .expect("consent");
        assert!(
            d.consented("alice", "c1", &[read.clone(), write])
                .await
                .expect("q")
        );
        assert!(
            !d.consented("alice", "c2", std::slice::from_ref(&read))
                .await
                .expect("q")
        );
        assert!(!d.consented("bob", "c1", &[read]).await.expect("q"));
        assert!(d.consented("bob", "c1", &[]).await.expect("q"));
    }

    #[tokio::test]
    async fn rotation_is_one_compare_and_swap() {
        let s = scratch().await;
        let store = &s.durable;
        store
            .insert_client(&dynamic("c1", 0, None))
            .await
            .expect("client");
        store
            .create_family("f", &family("c1", 100, "d1"), 7)
            .await
            .expect("create");
        assert!(
            store
                .create_family("f", &family("c1", 100, "x"), 7)
                .await
                .is_err()
        );
        let used = store.client("c1", &LIFETIMES, 8).await.expect("read");
        assert_eq!(
            used.and_then(|c| c.last_used),
            Some(7),
            "a sign-in marks the client used"
        );
        // Another client's token, or an unknown family: nothing changes.
        assert!(matches!(
            store.rotate("f", "c2", "d1", "d2", 10).await,
            Ok(Rotation::Gone)
        ));
        assert!(matches!(
            store.rotate("nope", "c1", "d1", "d2", 10).await,
            Ok(Rotation::Gone)
        ));
        assert!(matches!(
            store.rotate("f", "c1", "d1", "d2", 10).await,
            Ok(Rotation::Rotated)
        ));
        assert_eq!(
            store
                .family("f")
                .await
                .expect("family")
                .map(|f| f.current_sha256)
                .as_deref(),
            Some("d2")
        );
        // The same digest again is reuse, which ends the family for good.
        match store.rotate("f", "c1", "d1", "d3", 10).await {
            Ok(Rotation::Reused(family)) => assert_eq!(family.groups, vec!["dev".to_string()]),
            other => panic!("not reuse: {other:?}"),
        }
        assert!(matches!(
            store.rotate("f", "c1", "d2", "d3", 10).await,
            Ok(Rotation::Gone)
        ));
        assert!(store.family("f").await.expect("family").is_none());

        store
            .create_family("g", &family("c1", 100, "d1"), 7)
            .await
            .expect("create");
        assert!(matches!(
            store.rotate("g", "c1", "d1", "d2", 100).await,
            Ok(Rotation::Expired)
        ));
        assert!(store.family("g").await.expect("family").is_none());

        store
            .create_family("h", &family("c1", 100, "d1"), 7)
            .await
            .expect("create");
        assert_eq!(store.revoke_family("h", Some("c2")).await.ok(), Some(false));
        assert_eq!(store.revoke_family("h", Some("c1")).await.ok(), Some(true));
        assert!(matches!(
            store.rotate("h", "c1", "d1", "d2", 10).await,
            Ok(Rotation::Gone)
        ));
    }

    /// Two servers on one data dir (two `Durable`s over one file, each with
    /// its own connections) race registrations and refreshes: no write is
    /// lost, and of many redemptions of one token exactly one succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_file_lose_nothing() {
        let s = scratch().await;
        let other = Durable::open(&s.dir, None).await.expect("second opener");
        let stores = [&*s.durable, &other];
        let registrations = (0..40).map(|i| {
            let store = stores[i % 2];
            async move {
                let client = Client {
                    registered_from: None,
                    ..dynamic(&format!("c{i}"), 0, None)
                };
                store.register_client(&client, &LIFETIMES, 0).await
            }
        });
        for outcome in futures::future::join_all(registrations).await {
            assert_eq!(outcome.expect("register"), Ok(()));
        }
        assert_eq!(s.durable.counts().await.expect("counts").0, 40);

        s.durable
            .create_family("f", &family("c0", u64::MAX, "d0"), 1)
            .await
            .expect("family");
        let refreshes = (0..20).map(|i| {
            let store = stores[i % 2];
            async move { store.rotate("f", "c0", "d0", &format!("n{i}"), 2).await }
        });
        let outcomes = futures::future::join_all(refreshes).await;
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Rotation::Rotated)))
            .count();
        assert_eq!(rotated, 1, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    }
}
