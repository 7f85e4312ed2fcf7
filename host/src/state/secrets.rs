//! Keys the whole deployment shares: the `requestState` sealing key (a
//! round an MCP client starts on one replica finishes on another) and the
//! audit log's argument-digest key (equal arguments link across replicas'
//! chains). Whichever process asks first creates one; the rest read it.

use super::{Durable, StateError};

/// The request-state sealing key.
pub const REQUEST_STATE: &str = "request-state";
/// The audit argument-digest key.
pub const AUDIT_DIGEST: &str = "audit-digest";

impl Durable {
    /// The shared key `name`: the stored one, or else `initial` (a key an
    /// earlier release kept in a file) or a new random one, stored first.
    pub async fn shared_key(
        &self,
        name: &str,
        initial: Option<[u8; 32]>,
    ) -> Result<[u8; 32], StateError> {
        let fresh = match initial {
            Some(key) => key,
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|e| StateError::Corrupt(format!("no random source: {e}")))?;
                key
            }
        };
        // Of processes racing here, the first insert wins and all read it.
        sqlx::query("INSERT INTO shared_keys (name, hex) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(hex::encode(fresh))
            .execute(&self.pool)
            .await?;
        let stored: String = sqlx::query_scalar("SELECT hex FROM shared_keys WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        hex::decode(&stored)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| StateError::Corrupt(format!("shared key {name} is not 32 bytes of hex")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    #[tokio::test]
    async fn the_first_key_stays_the_key() {
        let s = scratch().await;
        let first = s
            .durable
            .shared_key(REQUEST_STATE, None)
            .await
            .expect("key");
        let again = s
            .durable
            .shared_key(REQUEST_STATE, Some([1; 32]))
            .await
            .expect("key");
        assert_eq!(first, again, "a later initial value changes nothing");
        let other = s
            .durable
            .shared_key(AUDIT_DIGEST, Some([2; 32]))
            .await
            .expect("key");
        assert_eq!(other, [2; 32], "an earlier release's key is kept");
        assert_ne!(first, other);
    }
}
