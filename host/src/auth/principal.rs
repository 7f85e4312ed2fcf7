//! The verified caller of a request.

/// Who is calling, as established from a verified token (or, with auth off,
/// from the client's address). Handlers read it from request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: a user, or a client acting for itself.
    pub subject: String,
    /// The OAuth client the token was issued to (`client_id` or `azp`).
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

pub const SCOPE_READ: &str = "read";
pub const SCOPE_WRITE: &str = "write";

impl Principal {
    /// With auth off, every caller may do everything, identified by address.
    pub(crate) fn anonymous(address: String) -> Principal {
        Principal {
            subject: address,
            client_id: None,
            scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
            groups: Vec::new(),
        }
    }

    /// A caller known by its verified TLS client certificate; the client id
    /// names the certificate, so audit records tell two keys apart.
    pub(crate) fn from_certificate(
        identity: &crate::tls::ClientIdentity,
        scopes: &[String],
    ) -> Principal {
        let short: String = identity.fingerprint.chars().take(23).collect();
        Principal {
            subject: identity.subject.clone(),
            client_id: Some(format!("cert:{short}")),
            scopes: scopes.to_vec(),
            groups: identity.groups.clone(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Splits an OAuth `scope` string, dropping duplicates and keeping order.
pub(crate) fn parse_scopes(text: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in text.split_ascii_whitespace() {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_whitespace_without_duplicates() {
        assert_eq!(parse_scopes(" read  write read "), vec!["read", "write"]);
        assert!(parse_scopes("").is_empty());
    }
}
