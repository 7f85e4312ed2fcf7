//! Access control: which tools a caller may see and call. Read-only tools
//! need the `read` scope, every other tool `write`; `[[auth.rules]]` then
//! allow or deny by subject, client id or group, and deny wins.

use crate::config::{AccessRule, RuleEffect};

use super::principal::{Principal, SCOPE_READ, SCOPE_WRITE};

/// The verdict for one caller and one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The token lacks this scope; a new token with it would be allowed.
    MissingScope(&'static str),
    /// A rule forbids it; no token of this caller's would help.
    Denied,
}

/// The facts about a tool the policy looks at.
pub struct ToolRef<'a> {
    pub plugin: &'a str,
    pub name: &'a str,
    pub read_only: bool,
}

#[derive(Debug, Default)]
pub struct Policy {
    rules: Vec<AccessRule>,
}

impl Policy {
    pub fn new(rules: Vec<AccessRule>) -> Policy {
        Policy { rules }
    }

    pub fn required_scope(tool: &ToolRef<'_>) -> &'static str {
        if tool.read_only {
            SCOPE_READ
        } else {
            SCOPE_WRITE
        }
    }

    pub fn decide(&self, who: &Principal, tool: &ToolRef<'_>) -> Decision {
        let scope = Policy::required_scope(tool);
        if !who.has_scope(scope) {
            return Decision::MissingScope(scope);
        }
        let mut covered_by_allow = false;
        let mut allowed = false;
        for rule in self.rules.iter().filter(|r| covers(r, tool)) {
            let applies = applies_to(rule, who);
            match rule.effect {
                RuleEffect::Deny if applies => return Decision::Denied,
                RuleEffect::Deny => {}
                RuleEffect::Allow => {
                    covered_by_allow = true;
                    allowed |= applies;
                }
            }
        }
        if covered_by_allow && !allowed {
            Decision::Denied
        } else {
            Decision::Allowed
        }
    }
}

fn covers(rule: &AccessRule, tool: &ToolRef<'_>) -> bool {
    if rule.plugin.as_deref().is_some_and(|p| p != tool.plugin) {
        return false;
    }
    rule.tools.is_empty()
        || rule
            .tools
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => tool.name.starts_with(prefix),
                None => pattern == tool.name,
            })
}

fn applies_to(rule: &AccessRule, who: &Principal) -> bool {
    if rule.subjects.is_empty() && rule.clients.is_empty() && rule.groups.is_empty() {
        return true;
    }
    rule.subjects.contains(&who.subject)
        || who
            .client_id
            .as_ref()
            .is_some_and(|c| rule.clients.contains(c))
        || who.groups.iter().any(|g| rule.groups.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(subject: &str, scopes: &[&str], groups: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            client_id: Some("cli".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rule(effect: RuleEffect, plugin: Option<&str>, tools: &[&str]) -> AccessRule {
        AccessRule {
            effect,
            plugin: plugin.map(str::to_string),
            tools: tools.iter().map(|s| s.to_string()).collect(),
            subjects: Vec::new(),
            clients: Vec::new(),
            groups: Vec::new(),
        }
    }

    const READ_TOOL: ToolRef<'static> = ToolRef {
        plugin: "github",
        name: "get_issue",
        read_only: true,
    };
    const WRITE_TOOL: ToolRef<'static> = ToolRef {
        plugin: "github",
        name: "create_issue",
        read_only: false,
    };

    #[test]
    fn scopes_gate_reads_and_writes() {
        let policy = Policy::default();
        let reader = who("a", &["read"], &[]);
        assert_eq!(policy.decide(&reader, &READ_TOOL), Decision::Allowed);
        assert_eq!(
            policy.decide(&reader, &WRITE_TOOL),
            Decision::MissingScope("write")
        );
        let writer = who("a", &["write"], &[]);
        assert_eq!(
            policy.decide(&writer, &READ_TOOL),
            Decision::MissingScope("read")
        );
    }

    #[test]
    fn deny_wins_and_allow_rules_restrict_what_they_cover() {
        let mut deny = rule(RuleEffect::Deny, Some("github"), &["create_*"]);
        deny.groups = vec!["contractors".into()];
        let mut allow = rule(RuleEffect::Allow, Some("github"), &[]);
        allow.groups = vec!["dev".into(), "contractors".into()];
        let policy = Policy::new(vec![allow, deny]);
        let both = ["read", "write"];
        assert_eq!(
            policy.decide(&who("d", &both, &["dev"]), &WRITE_TOOL),
            Decision::Allowed
        );
        assert_eq!(
            policy.decide(&who("c", &both, &["contractors"]), &WRITE_TOOL),
            Decision::Denied
        );
        assert_eq!(
            policy.decide(&who("c", &both, &["contractors"]), &READ_TOOL),
            Decision::Allowed
        );
        // Not in any allowed group: the allow rule covers github, so no.
        assert_eq!(
            policy.decide(&who("x", &both, &[]), &READ_TOOL),
            Decision::Denied
        );
        // Another plugin is not covered by either rule.
        let other = ToolRef {
            plugin: "jira",
            name: "get_issue",
            read_only: true,
        };
        assert_eq!(
            policy.decide(&who("x", &both, &[]), &other),
            Decision::Allowed
        );
    }

    #[test]
    fn rules_match_subjects_and_clients() {
        let mut deny = rule(RuleEffect::Deny, None, &["get_issue"]);
        deny.clients = vec!["cli".into()];
        let policy = Policy::new(vec![deny]);
        assert_eq!(
            policy.decide(&who("a", &["read"], &[]), &READ_TOOL),
            Decision::Denied
        );
    }
}
