//! The issuer's signing keys, shared by every replica: each key with the
//! moment it starts signing. A new key is stored ahead of that moment, so
//! every replica has loaded it (and publishes it in its JWKS) before any
//! replica signs with it; replicas then verify each other's tokens.

use sqlx::Row;

use super::{Durable, StateError, from_sql, to_sql};

/// One key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub kid: String,
    /// Unix milliseconds from which it signs (until a newer key does).
    pub active_from_ms: u64,
    /// PKCS#8 DER, base64.
    pub pkcs8: String,
    /// The public half as a JWK (JSON), so loading needs no private-key parse.
    pub public_jwk: String,
}

/// What a rotation should do, decided under the write lock from the keys
/// as they stand then.
pub struct KeyPlan {
    /// Add this key (it becomes current at its `active_from_ms`).
    pub add: Option<StoredKey>,
    /// Remove these (aged out: no unexpired token can name them).
    pub remove: Vec<String>,
}

const SELECT_KEYS: &str =
    "SELECT kid, active_from_ms, pkcs8, public_jwk FROM signing_keys ORDER BY active_from_ms, kid";

fn key_from_row(row: &sqlx::any::AnyRow) -> Result<StoredKey, StateError> {
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        active_from_ms: from_sql(row.try_get("active_from_ms")?),
        pkcs8: row.try_get("pkcs8")?,
        public_jwk: row.try_get("public_jwk")?,
    })
}

impl Durable {
    /// Every stored key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StateError> {
        let rows = sqlx::query(SELECT_KEYS).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Changes the key set as `plan` decides from the keys it is shown,
    /// under the write lock, so replicas rotating at the same moment add one
    /// key between them; returns the keys afterwards.
    pub async fn change_signing_keys(
        &self,
        plan: impl FnOnce(&[StoredKey]) -> KeyPlan,
    ) -> Result<Vec<StoredKey>, StateError> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(SELECT_KEYS).fetch_all(&mut *tx).await?;
        let keys = rows
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, StateError>>()?;
        let KeyPlan { add, remove } = plan(&keys);
        if add.is_none() && remove.is_empty() {
            return Ok(keys);
        }
        for kid in &remove {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(key) = &add {
            sqlx::query(
                "INSERT INTO signing_keys (kid, active_from_ms, pkcs8, public_jwk) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(key.kid.as_str())
            .bind(to_sql(key.active_from_ms))
            .bind(key.pkcs8.as_str())
            .bind(key.public_jwk.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut after: Vec<StoredKey> = keys
            .into_iter()
            .filter(|k| !remove.contains(&k.kid))
            .chain(add)
            .collect();
        after.sort_by(|a, b| (a.active_from_ms, &a.kid).cmp(&(b.active_from_ms, &b.kid)));
        Ok(after)
    }
}
