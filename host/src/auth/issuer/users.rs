//! The people who may sign in at `/authorize`: names with argon2id password
//! hashes and groups, in the state database (so every replica reads one
//! list), managed by `toolhost user`. Read at each sign-in, refresh and use
//! of a browser session, so adding, removing or regrouping a user needs no
//! restart and takes effect at once for every sign-in of theirs.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::state::users::UserRecord;
use crate::state::{Durable, StateError};

/// A user as a sign-in sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("reading or writing users: {0}")]
    Store(#[from] StateError),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("user names are 1–64 characters of letters, digits, `.`, `_`, `-` and `@`")]
    BadName,
}

fn check_name(name: &str) -> Result<(), UsersError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(UsersError::BadName)
    }
}

fn record(name: &str, password: &str, groups: Vec<String>) -> Result<UserRecord, UsersError> {
    check_name(name)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| UsersError::Hash(e.to_string()))?
        .to_string();
    Ok(UserRecord {
        name: name.to_string(),
        password: hash,
        groups,
    })
}

/// Adds `name` or replaces its password and groups.
pub async fn upsert(
    store: &Durable,
    name: &str,
    password: &str,
    groups: Vec<String>,
) -> Result<(), UsersError> {
    Ok(store.put_user(&record(name, password, groups)?).await?)
}

/// Adds `name` only if nobody exists yet; `false` if somebody does.
pub async fn add_first(store: &Durable, name: &str, password: &str) -> Result<bool, UsersError> {
    Ok(store
        .add_first_user(&record(name, password, Vec::new())?)
        .await?)
}

/// The user named `name`, if there is one.
pub async fn find(store: &Durable, name: &str) -> Result<Option<User>, UsersError> {
    Ok(store.user(name).await?.map(|u| User {
        name: u.name,
        groups: u.groups,
    }))
}

/// The user, if `stored` exists and `password` is theirs: one argon2 run
/// (blocking: call it off the async threads) whether or not the name
/// exists, so timing does not reveal which names do.
pub fn verify(stored: Option<UserRecord>, password: &str) -> Option<User> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2f5ZIeKpKCxYQkKfu4bqbrBqmcRAaFIPLEzwRxqcVwA";
    let hash = stored.as_ref().map_or(DUMMY, |u| u.password.as_str());
    let matches = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    stored.filter(|_| matches).map(|u| User {
        name: u.name,
        groups: u.groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    #[tokio::test]
    async fn users_are_added_and_checked() {
        let s = scratch().await;
        let store = &s.durable;
        upsert(store, "alice", "correct horse", vec!["dev".into()])
            .await
            .expect("add");
        let stored = store.user("alice").await.expect("read").expect("alice");
        assert!(stored.password.starts_with("$argon2id$") && !stored.password.contains("horse"));
        let alice = verify(Some(stored.clone()), "correct horse");
        assert_eq!(alice.map(|u| u.groups), Some(vec!["dev".to_string()]));
        assert!(verify(Some(stored), "wrong").is_none());
        assert!(verify(None, "correct horse").is_none());
        assert_eq!(
            find(store, "alice").await.expect("find").map(|u| u.groups),
            Some(vec!["dev".to_string()])
        );
        assert!(find(store, "bob").await.expect("find").is_none());
        assert!(matches!(
            upsert(store, "a b", "x", vec![]).await,
            Err(UsersError::BadName)
        ));
        assert!(
            !add_first(store, "admin", "whatever1").await.expect("first"),
            "users exist"
        );
    }
}
