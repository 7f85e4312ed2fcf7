//! Protocol revisions toolhost speaks and how a request picks one.
//!
//! Two eras share `/mcp`: the session era (`initialize` then
//! `Mcp-Session-Id`; 2024-11-05 to 2025-11-25) and the stateless era
//! (2026-07-28: every request carries its version and capabilities in
//! `_meta`, no session).

/// Session-era revisions, newest first.
pub(crate) const SESSION_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Stateless-era revisions, newest first.
pub(crate) const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];

/// The revision answered to an `initialize` asking for one we do not know,
/// including a newer one: the client then decides whether it can speak it.
pub(crate) const LATEST_SESSION: &str = "2025-11-25";

/// Which era and revision a request is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    Session(&'static str),
    Stateless(&'static str),
}

impl Era {
    /// 2025-03-26 allowed JSON-RPC batches; later revisions removed them.
    pub(crate) fn allows_batches(self) -> bool {
        self == Era::Session("2025-03-26")
    }

    pub(crate) fn is_stateless(self) -> bool {
        matches!(self, Era::Stateless(_))
    }
}

/// The session-era revision to answer `initialize` with. Never fails: an
/// unknown request gets our latest, per the lifecycle spec.
pub(crate) fn negotiate_session(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|v| SESSION_VERSIONS.iter().find(|known| **known == v))
        .copied()
        .unwrap_or(LATEST_SESSION)
}

/// Looks a revision string up among everything we speak.
pub(crate) fn known(version: &str) -> Option<Era> {
    if let Some(v) = SESSION_VERSIONS.iter().find(|known| **known == version) {
        return Some(Era::Session(v));
    }
    STATELESS_VERSIONS
        .iter()
        .find(|known| **known == version)
        .map(|v| Era::Stateless(v))
}

/// Every revision we speak, for error messages and discovery.
pub(crate) fn all_versions() -> Vec<&'static str> {
    STATELESS_VERSIONS
        .iter()
        .chain(SESSION_VERSIONS)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_never_fails() {
        let check = |requested: Option<&str>, expect: &str| {
            assert_eq!(negotiate_session(requested), expect);
        };
        check(Some("2025-06-18"), "2025-06-18");
        check(Some("2024-11-05"), "2024-11-05");
        check(Some("2099-01-01"), LATEST_SESSION);
        check(Some("2026-07-28"), LATEST_SESSION);
        check(None, LATEST_SESSION);
    }

    #[test]
    fn eras() {
        assert_eq!(known("2026-07-28"), Some(Era::Stateless("2026-07-28")));
        assert_eq!(known("2025-03-26"), Some(Era::Session("2025-03-26")));
        assert!(known("2025-03-26").is_some_and(Era::allows_batches));
        assert!(!known("2025-06-18").is_some_and(Era::allows_batches));
        assert_eq!(known("1999-01-01"), None);
    }
}
