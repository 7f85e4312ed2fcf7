//! Credentials as policy data: the template syntax of a credential value
//! (`Bearer ${env:TOKEN}`), whose rule keeps literal secrets out of sidecar
//! files, and the resolved header the host attaches, which never prints.
//!
//! Knows nothing of the environment or the file system: `sidecar` resolves
//! the references at load time, and `outbound` attaches the header.

use std::fmt;
use std::path::PathBuf;

use http::{HeaderName, HeaderValue};

use super::allow::AllowRule;

/// Longest literal text allowed around `${…}` references in a credential
/// value: room for a scheme word such as `Bearer ` or `token `, too little for
/// a secret pasted into the sidecar by mistake.
pub(crate) const MAX_CREDENTIAL_LITERAL: usize = 32;

/// A header the host adds to requests for one destination. The plugin never
/// sees the value; `Debug` never prints it.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) target: AllowRule,
    pub(crate) header: HeaderName,
    pub(crate) value: HeaderValue,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("target", &self.target.to_string())
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// One piece of a credential value: literal text or a reference resolved by
/// the host at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    Literal(String),
    Env(String),
    File(PathBuf),
}

/// Parses a credential value such as `Bearer ${env:GITHUB_TOKEN}`.
///
/// The rule that keeps secrets out of sidecar files: a value holds at least
/// one `${env:NAME}` or `${file:/absolute/path}` reference, and the literal
/// text around the references is at most [`MAX_CREDENTIAL_LITERAL`] bytes of
/// ASCII letters, spaces and `-` `.` `:` `_` (no digits), enough for `Bearer `
/// or `token ` and too little for a token. Error messages never repeat the
/// value.
pub(crate) fn parse_credential_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut literal_len = 0;
    let mut n_refs = 0;
    while !rest.is_empty() {
        let (literal, after) = match rest.find("${") {
            Some(idx) => (&rest[..idx], Some(&rest[idx + 2..])),
            None => (rest, None),
        };
        if !literal.is_empty() {
            let allowed = literal
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b" -.:_".contains(&b));
            literal_len += literal.len();
            if !allowed || literal_len > MAX_CREDENTIAL_LITERAL {
                return Err(TEMPLATE_RULE.to_string());
            }
            parts.push(TemplatePart::Literal(literal.to_string()));
        }
        let Some(after) = after else { break };
        let (reference, tail) = after
            .split_once('}')
            .ok_or_else(|| "a ${ reference is not closed with }".to_string())?;
        let part = match reference.split_once(':') {
            Some(("env", name)) if is_env_name(name) => TemplatePart::Env(name.to_string()),
            Some(("env", _)) => {
                return Err("${env:NAME} needs a variable name of [A-Za-z0-9_]".into());
            }
            Some(("file", path)) if path.starts_with('/') => TemplatePart::File(path.into()),
            Some(("file", _)) => return Err("${file:PATH} needs an absolute path".into()),
            _ => {
                return Err("references must be ${env:NAME} or ${file:/absolute/path}".to_string());
            }
        };
        parts.push(part);
        n_refs += 1;
        rest = tail;
    }
    if n_refs == 0 {
        return Err(TEMPLATE_RULE.to_string());
    }
    Ok(parts)
}

/// The rule a credential value breaks, stated without repeating the value.
const TEMPLATE_RULE: &str = "a credential value must be built from ${env:NAME} or \
    ${file:/absolute/path} references, with at most 32 letters, spaces and - . : _ of literal \
    text around them (such as \"Bearer \"); literal secrets are refused";

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_templates() {
        let check = |text: &str, expect: Result<Vec<TemplatePart>, &str>| match (
            parse_credential_template(text),
            expect,
        ) {
            (Ok(parts), Ok(want)) => assert_eq!(parts, want, "{text}"),
            (Err(err), Err(part)) => {
                assert!(err.contains(part), "{text}: {err:?} lacks {part:?}");
                assert!(
                    !err.contains(text) || text.len() < 8,
                    "error echoes the value"
                );
            }
            (res, expect) => panic!("{text}: got {res:?}, expected {expect:?}"),
        };
        use TemplatePart::*;
        check(
            "Bearer ${env:GITHUB_TOKEN}",
            Ok(vec![Literal("Bearer ".into()), Env("GITHUB_TOKEN".into())]),
        );
        check(
            "${file:/run/secrets/jira_token}",
            Ok(vec![File("/run/secrets/jira_token".into())]),
        );
        check(
            "${env:A}:${env:B}",
            Ok(vec![Env("A".into()), Literal(":".into()), Env("B".into())]),
        );
        check(
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            Err("literal secrets are refused"),
        );
        check(
            "Bearer ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            Err("literal secrets"),
        );
        check("Bearer abc123${env:X}", Err("literal secrets are refused"));
        check(&format!("{}${{env:X}}", "a".repeat(33)), Err("at most 32"));
        check("Bearer", Err("literal secrets are refused"));
        check("", Err("literal secrets are refused"));
        check("${env:}", Err("variable name"));
        check("${env:A-B}", Err("variable name"));
        check("${file:relative/path}", Err("absolute path"));
        check("${vault:x}", Err("references must be"));
        check("Bearer ${env:X", Err("not closed"));
    }
}
