//! The first start on a data dir written by an earlier release: its
//! `auth/state.json` (clients, refresh families, consents) moves into the
//! database in one transaction, and the file is renamed so it is read once.
//! Every sign-in and registration of the old file keeps working.
//!
//! Its `auth/users.toml` moves in the same way; a file that cannot be
//! renamed (a read-only mount, as a Kubernetes Secret is) stays and is read
//! again at every start, adding only the users the database lacks.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::issuer::{Client, Family, insert_client, insert_family};
use super::users::UserRecord;
use super::{Durable, StateError};

/// The file's shape, as the releases before the database wrote it.
#[derive(Debug, Default, Deserialize)]
struct Legacy {
    #[serde(default)]
    clients: BTreeMap<String, Client>,
    #[serde(default)]
    families: BTreeMap<String, Family>,
    /// subject → client id → scopes.
    #[serde(default)]
    consents: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

pub(super) const LEGACY_FILE: &str = "auth/state.json";
pub(super) const LEGACY_USERS: &str = "auth/users.toml";

/// `users.toml` as the releases before the database wrote it.
#[derive(Debug, Default, Deserialize)]
struct LegacyUsers {
    #[serde(default)]
    users: Vec<LegacyUser>,
}

#[derive(Debug, Deserialize)]
struct LegacyUser {
    name: String,
    password: String,
    #[serde(default)]
    groups: Vec<String>,
}

pub(super) async fn legacy_users(durable: &Durable, data_dir: &Path) -> Result<(), StateError> {
    let path = data_dir.join(LEGACY_USERS);
    let failed = |message: String| StateError::Import {
        path: path.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(failed(err.to_string())),
    };
    let legacy: LegacyUsers = toml::from_str(&text).map_err(|e| failed(e.to_string()))?;
    let records: Vec<UserRecord> = legacy
        .users
        .into_iter()
        .map(|u| UserRecord {
            name: u.name,
            password: u.password,
            groups: u.groups,
        })
        .collect();
    let added = durable.add_missing_users(&records).await?;
    let done = path.with_extension(format!("toml.{IMPORTED_SUFFIX}"));
    match std::fs::rename(&path, &done) {
        Ok(()) => tracing::info!(
            users = added,
            file = %done.display(),
            "users imported into the state database"
        ),
        Err(err) => tracing::info!(
            users = added,
            file = %path.display(),
            "users the database lacked were imported; the file could not be renamed ({err}) \
             and is read again at each start (users removed with `toolhost user remove` \
             come back while it lists them)"
        ),
    }
    Ok(())
}
const IMPORTED_SUFFIX: &str = "imported";

pub(super) async fn legacy_json(durable: &Durable, data_dir: &Path) -> Result<(), StateError> {
    let path = data_dir.join(LEGACY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(StateError::Import {
                path: path.display().to_string(),
                message: err.to_string(),
            });
        }
    };
    let failed = |message: String| StateError::Import {
        path: path.display().to_string(),
        message,
    };
    let legacy: Legacy = serde_json::from_slice(&bytes).map_err(|e| failed(e.to_string()))?;
    let signed_in: HashSet<&str> = legacy
        .families
        .values()
        .map(|f| f.client_id.as_str())
        .collect();
    let now = super::unix_now();
    // Existing rows win: a start that imported and then crashed before the
    // rename must not put back what has changed since.
    let mut tx = durable.write().await?;
    for client in legacy.clients.values() {
        let mut client = client.clone();
        // Files from before clients recorded their use: a dynamic client
        // holding a refresh family did sign someone in, so its idle time
        // counts from now rather than it expiring as never used.
        if client.dynamic
            && client.last_used.is_none()
            && signed_in.contains(client.client_id.as_str())
        {
            client.last_used = Some(now);
        }
        insert_client(&mut tx, &client).await?;
    }
    for (family_id, family) in &legacy.families {
        insert_family(&mut tx, family_id, family).await?;
    }
    for (subject, clients) in &legacy.consents {
        for (client_id, scopes) in clients {
            for scope in scopes {
                sqlx::query(
                    "INSERT INTO consents (subject, client_id, scope) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(subject.as_str())
                .bind(client_id.as_str())
                .bind(scope.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    let done = path.with_extension(format!("json.{IMPORTED_SUFFIX}"));
    std::fs::rename(&path, &done).map_err(|e| failed(format!("renaming it: {e}")))?;
    tracing::info!(
        clients = legacy.clients.len(),
        families = legacy.families.len(),
        file = %done.display(),
        "issuer state imported into the state database",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::issuer::{Lifetimes, Rotation};
    use std::time::Duration;

    /// A file as the release before the database wrote it (field for field).
    const WRITTEN_BY_0_1: &str = r#"{
  "clients": {
    "th-op": {
      "client_id": "th-op",
      "client_name": "ci",
      "secret_sha256": "aa",
      "redirect_uris": [],
      "grant_types": ["client_credentials"],
      "scope": "read write",
      "token_endpoint_auth_method": "client_secret_basic",
      "created": 100,
      "dynamic": false
    },
    "th-dyn": {
      "client_id": "th-dyn",
      "client_name": null,
      "secret_sha256": null,
      "redirect_uris": ["http://127.0.0.1:9/cb"],
      "grant_types": ["authorization_code", "refresh_token"],
      "scope": "read",
      "token_endpoint_auth_method": "none",
      "created": 100,
      "dynamic": true,
      "registered_from": "192.0.2.7"
    }
  },
  "families": {
    "fam1": {
      "client_id": "th-dyn",
      "subject": "alice",
      "scopes": ["read"],
      "groups": ["dev"],
      "expires": 18446744073709551615,
      "current_sha256": "d1"
    }
  },
  "consents": { "alice": { "th-dyn": ["read"] } }
}"#;

    #[tokio::test]
    async fn a_state_file_moves_into_the_database_once() {
        let dir = std::env::temp_dir().join(format!("toolhost-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("auth")).expect("dir");
        std::fs::write(dir.join(LEGACY_FILE), WRITTEN_BY_0_1).expect("write");
        let durable = Durable::open(&dir, None).await.expect("open");
        assert!(!dir.join(LEGACY_FILE).exists());
        assert!(dir.join("auth/state.json.imported").exists());
        assert_eq!(durable.counts().await.expect("counts"), (2, 1, 1));

        let lifetimes = Lifetimes {
            unused: Duration::from_secs(10),
            idle: Duration::from_secs(1_000_000),
        };
        let now = crate::state::unix_now();
        let op = durable
            .client("th-op", &lifetimes, now)
            .await
            .expect("read");
        assert_eq!(op.map(|c| c.scope).as_deref(), Some("read write"));
        // Signed in before the upgrade: counted as used, so not expired as
        // an unused registration.
        let dynamic = durable
            .client("th-dyn", &lifetimes, now)
            .await
            .expect("read");
        assert!(dynamic.is_some_and(|c| c.last_used.is_some()));
        assert!(
            durable
                .consented("alice", "th-dyn", &["read".into()])
                .await
                .expect("consent")
        );
        assert!(matches!(
            durable.rotate("fam1", "th-dyn", "d1", "d2", now).await,
            Ok(Rotation::Rotated)
        ));

        // A second start finds nothing to import and changes nothing.
        drop(durable);
        let again = Durable::open(&dir, None).await.expect("reopen");
        assert_eq!(again.counts().await.expect("counts"), (2, 1, 1));
        let family = again.family("fam1").await.expect("family");
        assert_eq!(family.map(|f| f.current_sha256).as_deref(), Some("d2"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_broken_state_file_stops_the_start_and_stays() {
        let dir = std::env::temp_dir().join(format!("toolhost-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("auth")).expect("dir");
        std::fs::write(dir.join(LEGACY_FILE), "{ not json").expect("write");
        let err = Durable::open(&dir, None).await.err().expect("refused");
        assert!(err.to_string().contains("state.json"), "{err}");
        assert!(
            dir.join(LEGACY_FILE).exists(),
            "the file is kept for the operator"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_users_file_moves_into_the_database_and_a_read_only_one_adds_only_whats_missing() {
        let dir = std::env::temp_dir().join(format!("toolhost-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("auth")).expect("dir");
        let file = "[[users]]\nname = \"ana\"\npassword = \"$argon2id$a\"\ngroups = [\"dev\"]\n\n\
                    [[users]]\nname = \"bo\"\npassword = \"$argon2id$b\"\n";
        std::fs::write(dir.join(LEGACY_USERS), file).expect("write");
        let durable = Durable::open(&dir, None).await.expect("open");
        let ana = durable.user("ana").await.expect("read").expect("ana");
        assert_eq!(
            (ana.password.as_str(), ana.groups),
            ("$argon2id$a", vec!["dev".to_string()])
        );
        assert!(durable.user("bo").await.expect("read").is_some());
        assert!(!dir.join(LEGACY_USERS).exists());
        assert!(dir.join("auth/users.toml.imported").exists());

        // A file that stays (say, mounted read-only) adds what is missing
        // and leaves changed users as they are.
        durable
            .set_user_groups("ana", &["ops".to_string()])
            .await
            .expect("regroup");
        durable.remove_user("bo").await.expect("remove");
        import_users_from(&durable, &dir, file).await;
        assert_eq!(
            durable.user("ana").await.expect("read").map(|u| u.groups),
            Some(vec!["ops".to_string()])
        );
        assert!(
            durable.user("bo").await.expect("read").is_some(),
            "listed, so back"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn import_users_from(durable: &Durable, dir: &Path, text: &str) {
        std::fs::write(dir.join(LEGACY_USERS), text).expect("write");
        legacy_users(durable, dir).await.expect("import");
    }

    #[tokio::test]
    async fn a_broken_users_file_stops_the_start_and_stays() {
        let dir = std::env::temp_dir().join(format!("toolhost-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("auth")).expect("dir");
        std::fs::write(dir.join(LEGACY_USERS), "[[users]]\nname = 3\n").expect("write");
        let err = Durable::open(&dir, None).await.err().expect("refused");
        assert!(err.to_string().contains("users.toml"), "{err}");
        assert!(dir.join(LEGACY_USERS).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
