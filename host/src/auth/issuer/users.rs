//! The people who may sign in at `/authorize`: `<data_dir>/auth/users.toml`,
//! names with argon2id password hashes, managed by `toolhost user add`.
//! The file is read at each sign-in, refresh and use of a browser session,
//! so adding, removing or regrouping a user needs no restart and takes
//! effect at once for every sign-in of theirs.

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UsersFile {
    #[serde(default)]
    pub users: Vec<User>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// PHC string (`$argon2id$v=19$…`).
    pub password: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid users file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("user names are 1–64 characters of letters, digits, `.`, `_`, `-` and `@`")]
    BadName,
}

pub fn users_path(auth_dir: &Path) -> PathBuf {
    auth_dir.join("users.toml")
}

pub fn load(path: &Path) -> Result<UsersFile, UsersError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| UsersError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
        Err(source) => Err(UsersError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Adds `name` or replaces its password and groups.
pub fn upsert(
    path: &Path,
    name: &str,
    password: &str,
    groups: Vec<String>,
) -> Result<(), UsersError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !valid {
        return Err(UsersError::BadName);
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| UsersError::Hash(e.to_string()))?
        .to_string();
    let mut file = load(path)?;
    file.users.retain(|u| u.name != name);
    file.users.push(User {
        name: name.to_string(),
        password: hash,
        groups,
    });
    let text = toml::to_string_pretty(&file).map_err(|e| UsersError::Hash(e.to_string()))?;
    if let Some(dir) = path.parent() {
        crate::secret_file::create_dir(dir).map_err(|source| UsersError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    crate::secret_file::write(path, text.as_bytes()).map_err(|source| UsersError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The user named `name`, if the file lists them.
pub fn find(path: &Path, name: &str) -> Result<Option<User>, UsersError> {
    Ok(load(path)?.users.into_iter().find(|u| u.name == name))
}

/// The user, if `name` exists and `password` is theirs. Takes the same time
/// (one argon2 run) whether or not the name exists, so timing does not
/// reveal which names do.
pub fn check(path: &Path, name: &str, password: &str) -> Result<Option<User>, UsersError> {
    let file = load(path)?;
    let user = file.users.into_iter().find(|u| u.name == name);
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2f5ZIeKpKCxYQkKfu4bqbrBqmcRAaFIPLEzwRxqcVwA";
    let hash = user.as_ref().map_or(DUMMY, |u| u.password.as_str());
    let matches = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    Ok(user.filter(|_| matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_added_and_checked() {
        let dir = std::env::temp_dir().join(format!("toolhost-users-{}", uuid::Uuid::new_v4()));
        let path = users_path(&dir);
        upsert(&path, "alice", "correct horse", vec!["dev".into()]).expect("add");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));
        let alice = check(&path, "alice", "correct horse").expect("check");
        assert_eq!(alice.map(|u| u.groups), Some(vec!["dev".to_string()]));
        assert!(check(&path, "alice", "wrong").expect("check").is_none());
        assert!(
            check(&path, "bob", "correct horse")
                .expect("check")
                .is_none()
        );
        assert_eq!(
            find(&path, "alice").expect("find").map(|u| u.groups),
            Some(vec!["dev".to_string()])
        );
        assert!(find(&path, "bob").expect("find").is_none());
        assert!(matches!(
            upsert(&path, "a b", "x", vec![]),
            Err(UsersError::BadName)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
