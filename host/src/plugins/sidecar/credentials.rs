//! The sidecar's `[credentials]` entries: each checked against the grant it
//! belongs to and resolved, at load time, from `${env:…}` and `${file:…}`
//! references into a header value the guest never sees.
//!
//! Knows nothing of limits; the template syntax is `plugins::network`'s.
//! Messages name entries and references, never a resolved value. The cases
//! are tested through `network::tests`, where the environment and file
//! reader are injected.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::plugins::network::{self, AllowRule, Credential, NetworkGrant, TemplatePart};

/// Largest `${file:PATH}` secret read: a path pointing at a big file or a
/// device by mistake must not stall loading or fill memory.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Either `header` with `value`, or `basic` with a username and password.
/// The strings are templates of `${env:…}`/`${file:…}` references.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SidecarCredential {
    header: Option<String>,
    value: Option<String>,
    basic: Option<BasicCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicCredential {
    username: String,
    password: String,
}

impl std::fmt::Debug for SidecarCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A refused literal secret must not reach a log through `Debug`.
        f.debug_struct("SidecarCredential")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Headers the host owns on the wire: a credential may not replace them.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Checks one `[credentials]` entry against the grant and resolves its value.
/// Messages name the entry and the reference, never a resolved value.
pub(super) fn resolve_credential(
    key: &str,
    credential: &SidecarCredential,
    grant: &NetworkGrant,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Credential, String> {
    let err = |message: String| format!("credentials.{key:?}: {message}");
    let rule: AllowRule = key.parse().map_err(|e| err(format!("{e}")))?;
    let target = rule
        .exact_target()
        .ok_or_else(|| err("a credential names one host, not a wildcard".into()))?;
    if !grant.allow.iter().any(|allowed| allowed.matches(&target)) {
        return Err(err(format!("{target} is not in [network] allow")));
    }
    if target.scheme == network::Scheme::Http && !target.is_loopback() {
        return Err(err(
            "credentials travel over https only (plain http only to localhost or a loopback address)"
                .into(),
        ));
    }
    let resolve = |field: &str, text: &str| -> Result<String, String> {
        let parts =
            network::parse_credential_template(text).map_err(|e| err(format!("{field}: {e}")))?;
        let mut value = String::new();
        for part in parts {
            match part {
                TemplatePart::Literal(text) => value.push_str(&text),
                TemplatePart::Env(name) => match env(&name) {
                    Some(v) if !v.is_empty() => value.push_str(&v),
                    Some(_) => {
                        return Err(err(format!(
                            "{field}: environment variable {name} is empty"
                        )));
                    }
                    None => {
                        return Err(err(format!(
                            "{field}: environment variable {name} is not set"
                        )));
                    }
                },
                TemplatePart::File(path) => {
                    let secret = read_file(&path).map_err(|e| err(format!("{field}: {e}")))?;
                    value.push_str(&secret);
                }
            }
        }
        Ok(value)
    };
    let (header, value) = match credential {
        SidecarCredential {
            header: Some(header),
            value: Some(value),
            basic: None,
        } => {
            let header = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| err(format!("{header:?} is not a valid header name")))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(err(format!("the host sets {header} itself")));
            }
            (header, resolve("value", value)?)
        }
        SidecarCredential {
            header: None,
            value: None,
            basic: Some(basic),
        } => {
            let username = resolve("basic.username", &basic.username)?;
            let password = resolve("basic.password", &basic.password)?;
            if username.contains(':') {
                return Err(err("basic.username may not contain ':'".into()));
            }
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            (http::header::AUTHORIZATION, format!("Basic {pair}"))
        }
        _ => {
            return Err(err(
                "set either header and value, or basic = { username, password }".into(),
            ));
        }
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        err(
            "the resolved value is not a valid header value (a line break or control character?)"
                .into(),
        )
    })?;
    value.set_sensitive(true);
    Ok(Credential {
        target: rule,
        header,
        value,
    })
}

/// Reads a `${file:PATH}` secret, without its trailing line break.
pub(super) fn read_secret_file(path: &Path) -> Result<String, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_SECRET_FILE_BYTES} bytes",
            path.display()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_string())
}
