//! TLS 1.3 server configuration: certificates from PEM files, or a self-signed
//! development certificate generated on first run.
//!
//! Knows nothing about HTTP routes or MCP; it only produces a
//! `rustls::ServerConfig` and reports what it loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::{ClientAuth, TlsConfig};

/// Where the certificate came from, for the start-up banner.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate (DER), colon-separated hex.
    pub fingerprint: String,
    pub generated: bool,
}

/// Errors loading or generating key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("cannot generate a development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls.client_ca is not a usable CA for client certificates: {0}")]
    ClientCa(String),
}

/// The caller a verified client certificate names (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's common name, else the whole subject DN.
    pub subject: String,
    /// The subject's organizational units, used as groups by access rules.
    pub groups: Vec<String>,
    /// SHA-256 of the certificate (DER), colon-separated hex.
    pub fingerprint: String,
}

impl ClientIdentity {
    /// Reads the leaf of a chain rustls has already verified; `None` when it
    /// does not parse (rustls would not have accepted it).
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<ClientIdentity> {
        let leaf = chain.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .find_map(|cn| cn.as_str().ok())
            .map(str::to_string);
        let groups = subject
            .iter_organizational_unit()
            .filter_map(|ou| ou.as_str().ok())
            .map(str::to_string)
            .collect();
        Some(ClientIdentity {
            subject: common_name.unwrap_or_else(|| subject.to_string()),
            groups,
            fingerprint: fingerprint(leaf),
        })
    }
}

/// The served TLS configuration; swapped whole when the certificate files
/// change, so new connections get the new certificate and open ones keep
/// theirs.
pub struct Certificates {
    current: ArcSwap<rustls::ServerConfig>,
    cert_path: PathBuf,
    key_path: PathBuf,
    client_ca: Option<(PathBuf, ClientAuth)>,
}

impl Certificates {
    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current.load_full()
    }

    /// Re-reads the files; on any error the previous configuration keeps
    /// serving. Returns the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let (config, fingerprint) = build(&self.cert_path, &self.key_path, &self.client_ca)?;
        self.current.store(config);
        Ok(fingerprint)
    }
}

/// Builds the server's TLS configuration at start-up. `data_dir` receives a
/// generated certificate when `config` names none.
pub fn server_config(
    config: &TlsConfig,
    data_dir: &Path,
) -> Result<(Arc<Certificates>, CertInfo), TlsError> {
    let (cert_path, key_path, generated) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let dir = data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            let generated = !(cert.exists() && key.exists());
            if generated {
                write_dev_certificate(&dir, &cert, &key)?;
            }
            (cert, key, generated)
        }
    };
    let client_ca = config.client_ca.clone().map(|ca| (ca, config.client_auth));
    let (server, fingerprint) = build(&cert_path, &key_path, &client_ca)?;
    let info = CertInfo {
        cert_path: cert_path.clone(),
        fingerprint,
        generated,
    };
    let certificates = Certificates {
        current: ArcSwap::new(server),
        cert_path,
        key_path,
        client_ca,
    };
    Ok((Arc::new(certificates), info))
}

fn build(
    cert_path: &Path,
    key_path: &Path,
    client_ca: &Option<(PathBuf, ClientAuth)>,
) -> Result<(Arc<rustls::ServerConfig>, String), TlsError> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let fingerprint = fingerprint(&certs[0]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // TLS 1.3 only: the design rules out 1.2 and its weaker cipher suites.
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some((path, mode)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(path)? {
                roots.add(cert)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = match mode {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|err| TlsError::ClientCa(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(certs, key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(server), fingerprint))
}

/// Owns the certificate watcher and its task; dropping stops both.
pub struct CertWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CertWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Quiet period after the last change: renewals write key and certificate
/// separately, and a half-replaced pair must not be loaded.
const CERT_DEBOUNCE: Duration = Duration::from_millis(250);

/// Reloads `certificates` whenever its files change. Strategy: watch the
/// directories holding the files (renames replace the inode, so watching
/// the files themselves would miss the new ones), debounce, rebuild; a pair
/// that does not load (say, key renewed before the certificate) leaves the
/// old configuration serving until the next change completes the pair.
pub fn watch(certificates: Arc<Certificates>) -> notify::Result<CertWatch> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut files = vec![
        certificates.cert_path.clone(),
        certificates.key_path.clone(),
    ];
    files.extend(certificates.client_ca.iter().map(|(path, _)| path.clone()));
    let names: Vec<_> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && crate::fswatch::is_change(&event.kind)
            && event.paths.iter().any(|p| {
                crate::fswatch::is_volume_swap(p)
                    || p.file_name().is_some_and(|n| names.iter().any(|m| m == n))
            })
        {
            let _ = tx.send(());
        }
    })?;
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        notify::Watcher::watch(&mut watcher, dir, notify::RecursiveMode::NonRecursive)?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while let Ok(Some(())) = tokio::time::timeout(CERT_DEBOUNCE, rx.recv()).await {}
            match certificates.reload() {
                Ok(fingerprint) => tracing::info!(%fingerprint, "TLS certificate reloaded"),
                Err(err) => tracing::error!(
                    "TLS certificate reload failed; the previous one keeps serving: {err}"
                ),
            }
        }
    });
    Ok(CertWatch {
        _watcher: watcher,
        task,
    })
}

fn write_dev_certificate(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    crate::secret_file::create_dir(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })?;
    crate::secret_file::write(key_path, certified.signing_key.serialize_pem().as_bytes()).map_err(
        |source| TlsError::Write {
            path: key_path.to_path_buf(),
            source,
        },
    )
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_path_buf(),
        })
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = std::env::temp_dir().join(format!("toolhost-tls-{}", uuid::Uuid::new_v4()));
        let (_, first) = server_config(&TlsConfig::default(), &dir).expect("generate");
        assert!(first.generated);
        let (certificates, second) = server_config(&TlsConfig::default(), &dir).expect("reuse");
        assert!(!second.generated);
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(certificates.current().alpn_protocols[0], b"h2");
        assert_eq!(certificates.reload().expect("reload"), first.fingerprint);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_are_named() {
        let config = TlsConfig {
            cert: Some(PathBuf::from("/nonexistent/cert.pem")),
            key: Some(PathBuf::from("/nonexistent/key.pem")),
            ..TlsConfig::default()
        };
        let Err(err) = server_config(&config, Path::new("/tmp")) else {
            panic!("missing files must fail");
        };
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
