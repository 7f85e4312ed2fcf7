//! What `serve` prints on stdout once it is listening: the first thing a
//! newcomer reads. It fits one terminal screen (24 lines) and ends with
//! the next step for each way in (a client, the CLI, more plugins), so the
//! URL they need is on screen when the server starts.
//!
//! Scripts and tests read it: the first line is `toolhost listening on URL`
//! (the socket actually bound), and `metrics: URL` and `certificate (…): PATH`
//! each start a line.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::AuthMode;
use crate::tls::CertInfo;

use super::snippets;

/// Where the metrics listener ended up, and why, for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MetricsLine {
    Off,
    At(SocketAddr),
    /// The default address was taken (another toolhost on this machine):
    /// serving on a free port instead.
    Moved {
        wanted: SocketAddr,
        at: SocketAddr,
    },
    /// The default address was taken and no other port could be had.
    Unavailable {
        wanted: SocketAddr,
    },
}

/// Everything the banner shows.
pub(super) struct Facts<'a> {
    pub bound_url: &'a str,
    pub base_url: &'a str,
    pub cert: Option<&'a CertInfo>,
    pub n_plugins: usize,
    pub n_tools: usize,
    pub n_refused: usize,
    pub auth_mode: AuthMode,
    /// What `auth` says: the issuer for `external`, the client CA for
    /// `certificate`.
    pub auth_detail: &'a str,
    /// The generated password of `admin`, on a first start.
    pub first_password: Option<&'a str>,
    pub metrics: MetricsLine,
    pub plugins_dir: &'a Path,
}

pub(super) fn lines(facts: &Facts<'_>) -> Vec<String> {
    let mcp_url = format!("{}/mcp", facts.base_url);
    let mut out = vec![format!("toolhost listening on {}/mcp", facts.bound_url)];
    if facts.bound_url != facts.base_url {
        out.push(format!("  public URL: {mcp_url}"));
    }
    out.push(format!(
        "  plugins: {} loaded ({} tools), {} refused, from {}",
        facts.n_plugins,
        facts.n_tools,
        facts.n_refused,
        facts.plugins_dir.display()
    ));
    if let Some(cert) = facts.cert {
        let origin = if cert.generated {
            "generated self-signed"
        } else {
            "loaded"
        };
        out.push(format!(
            "  certificate ({origin}): {}",
            cert.cert_path.display()
        ));
        out.push(format!("  SHA-256 fingerprint: {}", cert.fingerprint));
    }
    out.extend(auth_lines(facts));
    match &facts.metrics {
        MetricsLine::Off => {}
        MetricsLine::At(addr) => out.push(format!("  metrics: http://{addr}/metrics")),
        MetricsLine::Moved { wanted, at } => out.push(format!(
            "  metrics: http://{at}/metrics ({wanted} is taken, by another server?; \
             set metrics.listen to choose)"
        )),
        MetricsLine::Unavailable { wanted } => out.push(format!(
            "  metrics: off ({wanted} is taken and no free port was found; set metrics.listen)"
        )),
    }
    out.push("Next steps:".into());
    out.extend(next_steps(facts, &mcp_url));
    out
}

fn auth_lines(facts: &Facts<'_>) -> Vec<String> {
    match facts.auth_mode {
        AuthMode::Off => vec![
            "  auth: OFF: anyone who can reach this loopback address may call every tool".into(),
        ],
        AuthMode::Certificate => vec![format!(
            "  auth: TLS client certificates signed by {}",
            facts.auth_detail
        )],
        AuthMode::External => vec![format!("  auth: bearer tokens from {}", facts.auth_detail)],
        AuthMode::Embedded => {
            let mut out = vec![format!(
                "  auth: OAuth 2.1, embedded authorization server at {}",
                facts.base_url
            )];
            match facts.first_password {
                Some(password) => out.push(format!(
                    "  first run: sign in as user \"admin\" with password {password} \
                     (shown once; change it with `toolhost user add admin`)"
                )),
                None => out.push("  users: `toolhost user list`, `toolhost user add NAME`".into()),
            }
            out.push(
                "  scripts: `toolhost token --sub NAME` prints a token; \
                 `toolhost client add NAME` creates a client_credentials client"
                    .into(),
            );
            out
        }
    }
}

/// One line (or two) for each way in, the URL in each.
fn next_steps(facts: &Facts<'_>, mcp_url: &str) -> Vec<String> {
    let (_, pretty) = snippets::render(snippets::ClientKind::Json, "toolhost", mcp_url);
    // The same snippet on one line, so it cannot scroll the rest away.
    let json = serde_json::from_str::<serde_json::Value>(&pretty)
        .map(|value| value.to_string())
        .unwrap_or(pretty);
    let (_, claude) = snippets::render(snippets::ClientKind::Claude, "toolhost", mcp_url);
    let generated_cert = facts
        .cert
        .filter(|c| c.generated || c.cert_path.ends_with("tls/cert.pem"))
        .map(|c| c.cert_path.display().to_string());
    let mut out = vec![
        format!("  1. connect a client: {json}"),
        format!("     or: {claude}   (`toolhost config claude|vscode|cursor|json URL` for others)"),
    ];
    if let Some(cert) = &generated_cert {
        out.push(format!(
            "     Node-based clients trust the certificate with NODE_EXTRA_CA_CERTS={cert}"
        ));
    }
    let ca = generated_cert
        .as_ref()
        .map_or_else(String::new, |cert| format!("TOOLHOST_CA_CERT={cert} "));
    out.push(match facts.auth_mode {
        AuthMode::Embedded | AuthMode::External => {
            format!("  2. sign in with the CLI: {ca}toolhost login {mcp_url}")
        }
        AuthMode::Off | AuthMode::Certificate => {
            format!("  2. list the tools with the CLI: {ca}toolhost tools --url {mcp_url}")
        }
    });
    out.push(format!(
        "  3. add the GitHub plugin: copy plugins/github/github.toml, then target/integrations/github.wasm, \
         into {} (README: \"GitHub and Jira\")",
        facts.plugins_dir.display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// One screen of a classic terminal.
    const MAX_LINES: usize = 24;

    fn facts<'a>(cert: &'a CertInfo, metrics: MetricsLine, public: &'a str) -> Facts<'a> {
        Facts {
            bound_url: "https://127.0.0.1:8443",
            base_url: public,
            cert: Some(cert),
            n_plugins: 1,
            n_tools: 11,
            n_refused: 0,
            auth_mode: AuthMode::Embedded,
            auth_detail: "",
            first_password: Some("0123456789abcdefghij"),
            metrics,
            plugins_dir: Path::new("target/plugins"),
        }
    }

    fn cert() -> CertInfo {
        CertInfo {
            cert_path: PathBuf::from(".toolhost/tls/cert.pem"),
            fingerprint: ["AB"; 32].join(":"),
            generated: true,
        }
    }

    /// The longest banner (a public URL differing from the socket, a
    /// generated certificate, a first password, moved metrics) still fits
    /// one screen, and ends with the three next steps.
    #[test]
    fn fits_one_screen_and_ends_with_next_steps() {
        let cert = cert();
        let moved = MetricsLine::Moved {
            wanted: SocketAddr::from(([127, 0, 0, 1], 9464)),
            at: SocketAddr::from(([127, 0, 0, 1], 40000)),
        };
        let lines = lines(&facts(&cert, moved, "https://tools.example.com"));
        assert!(
            lines.len() <= MAX_LINES,
            "{} lines:\n{}",
            lines.len(),
            lines.join("\n")
        );
        assert!(lines[0].starts_with("toolhost listening on https://127.0.0.1:8443/mcp"));
        let steps = lines
            .iter()
            .position(|l| l == "Next steps:")
            .expect("a next-steps heading");
        let tail = lines[steps..].join("\n");
        assert!(
            tail.contains("1. connect a client: {\"mcpServers\""),
            "{tail}"
        );
        assert!(
            tail.contains("2. sign in with the CLI: TOOLHOST_CA_CERT=.toolhost/tls/cert.pem toolhost login https://tools.example.com/mcp"),
            "{tail}"
        );
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with("  3. add the GitHub plugin:")),
            "{tail}"
        );
        // Nothing before the steps is a multi-line snippet.
        assert!(lines[..steps].iter().all(|l| !l.contains("mcpServers")));
    }

    #[test]
    fn metrics_line_says_where_and_why() {
        let cert = cert();
        let wanted: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9464));
        let at: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 40000));
        let moved = lines(&facts(
            &cert,
            MetricsLine::Moved { wanted, at },
            "https://127.0.0.1:8443",
        ));
        assert!(
            moved.iter().any(|l| l
                .starts_with("  metrics: http://127.0.0.1:40000/metrics (127.0.0.1:9464 is taken")),
            "{moved:?}"
        );
        let off = lines(&facts(
            &cert,
            MetricsLine::Unavailable { wanted },
            "https://127.0.0.1:8443",
        ));
        assert!(
            off.iter()
                .any(|l| l.starts_with("  metrics: off (127.0.0.1:9464 is taken")),
            "{off:?}"
        );
    }
}
