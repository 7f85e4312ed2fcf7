//! Where the developer CLI keeps its sign-ins: one JSON file (mode 0600)
//! in the user's config directory, an entry per server URL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Environment variable naming another credentials file (tests, CI).
pub const CREDENTIALS_ENV: &str = "TOOLHOST_CREDENTIALS";

/// One server's sign-in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credential {
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    /// Only for the client-credentials grant, which renews with it.
    #[serde(default)]
    pub client_secret: Option<String>,
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(default)]
    pub scope: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    servers: BTreeMap<String, Credential>,
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    /// `$TOOLHOST_CREDENTIALS`, else `<config dir>/toolhost/credentials.json`.
    pub fn open() -> anyhow::Result<Store> {
        let path = match std::env::var_os(CREDENTIALS_ENV) {
            Some(path) => PathBuf::from(path),
            None => dirs::config_dir()
                .context("no user config directory; set TOOLHOST_CREDENTIALS")?
                .join("toolhost/credentials.json"),
        };
        Ok(Store { path })
    }

    pub fn at(path: &Path) -> Store {
        Store {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> anyhow::Result<File> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a credentials file", self.path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn write(&self, file: &File) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::secret_file::create_dir(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        crate::secret_file::write(&self.path, &serde_json::to_vec_pretty(file)?)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    pub fn get(&self, server: &str) -> anyhow::Result<Option<Credential>> {
        Ok(self.read()?.servers.get(server).cloned())
    }

    pub fn put(&self, server: &str, credential: Credential) -> anyhow::Result<()> {
        let mut file = self.read()?;
        file.servers.insert(server.to_string(), credential);
        self.write(&file)
    }

    pub fn remove(&self, server: &str) -> anyhow::Result<Option<Credential>> {
        let mut file = self.read()?;
        let removed = file.servers.remove(server);
        self.write(&file)?;
        Ok(removed)
    }

    /// The only server signed in to, for commands given no URL.
    pub fn only_server(&self) -> anyhow::Result<Option<String>> {
        let file = self.read()?;
        Ok(match file.servers.len() {
            1 => file.servers.keys().next().cloned(),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_privately() {
        let dir = std::env::temp_dir().join(format!("toolhost-creds-{}", uuid::Uuid::new_v4()));
        let store = Store::at(&dir.join("credentials.json"));
        assert_eq!(store.get("https://a/mcp").expect("get"), None);
        let credential = Credential {
            token_endpoint: "https://a/token".into(),
            revocation_endpoint: None,
            client_id: "c".into(),
            client_secret: None,
            access_token: "t".into(),
            refresh_token: Some("r".into()),
            expires_at: 1,
            scope: "read".into(),
        };
        store.put("https://a/mcp", credential.clone()).expect("put");
        assert_eq!(store.get("https://a/mcp").expect("get"), Some(credential));
        assert_eq!(
            store.only_server().expect("only").as_deref(),
            Some("https://a/mcp")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.remove("https://a/mcp").expect("remove").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
