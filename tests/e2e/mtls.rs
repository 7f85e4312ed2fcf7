//! Mutual TLS: `tls.client_ca` makes the handshake demand a certificate
//! that CA signed, and with `auth.mode = "certificate"` that certificate is
//! the caller: its common name the subject, its organizational units the
//! groups access rules match.

use std::path::Path;

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::AlertDescription;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::harness::{Server, Setup, client_builder, install_crypto, scratch_dir};

/// A certificate authority that signs client certificates.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> anyhow::Result<Authority> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ok(Authority {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// A client certificate and key, as one PEM bundle.
    fn client(&self, common_name: &str, unit: &str) -> anyhow::Result<String> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, unit);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
    }
}

fn client_with(server: &Server, identity: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = client_builder(&server.cert_path, None)?;
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes())?);
    }
    Ok(builder.build()?)
}

/// The fatal alert the server sends a TLS 1.3 client offering `identity`
/// (a PEM bundle of certificate and key) or, with `None`, no certificate.
/// The client trusts the server and sends nothing after its Finished, so
/// the only thing it can read is the server's verdict on its certificate:
/// an accepted client would read nothing until it sent a request.
async fn refusal(server: &Server, identity: Option<&str>) -> anyhow::Result<AlertDescription> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&server.cert_path)?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some(bundle) => {
            let certs = rustls_pemfile::certs(&mut bundle.as_bytes()).collect::<Result<_, _>>()?;
            let key = rustls_pemfile::private_key(&mut bundle.as_bytes())?.context("no key")?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    let addr = server
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    // In TLS 1.3 the client finishes its side of the handshake before the
    // server has judged its certificate, so the alert may come either way.
    let failure = match connector.connect(name, tcp).await {
        Err(err) => err,
        Ok(mut tls) => {
            let mut byte = [0u8; 1];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut byte)).await;
            match read {
                Ok(Err(err)) => err,
                Ok(Ok(n)) => bail!("the server accepted the handshake and then sent {n} bytes"),
                Err(_) => bail!("the server accepted the handshake"),
            }
        }
    };
    match failure
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => Ok(*alert),
        _ => bail!("not a certificate refusal from the server: {failure}"),
    }
}

async fn start(config: impl FnOnce(&Path) -> String) -> anyhow::Result<(Server, Authority)> {
    let authority = Authority::new("Team CA")?;
    let ca_path = scratch_dir("mtls").join("client-ca.pem");
    std::fs::write(&ca_path, authority.issuer.pem())?;
    let server = Setup::new()
        .bundled("devtools")
        .config(&config(&ca_path))
        .start()
        .await?;
    Ok((server, authority))
}

#[tokio::test]
async fn a_client_certificate_is_the_caller() -> anyhow::Result<()> {
    let (server, authority) = start(|ca| {
        format!(
            "[tls]\nclient_ca = {ca:?}\n[auth]\nmode = \"certificate\"\ncertificate_scopes = [\"read\"]\n\
             [[auth.rules]]\neffect = \"deny\"\nplugin = \"devtools\"\ntools = [\"uuid\"]\ngroups = [\"contractors\"]\n"
        )
    })
    .await?;
    let alice = client_with(&server, Some(&authority.client("alice", "platform")?))?;
    let reply = server
        .stateless_with(
            &alice,
            None,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await?;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let caller = &reply.response()?["result"]["structuredContent"];
    assert_eq!(caller["subject"], "alice", "{caller}");
    assert_eq!(caller["scopes"], json!(["read"]), "{caller}");
    assert!(
        caller["client_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("cert:")),
        "{caller}"
    );

    // The groups come from the organizational unit: a contractor is
    // refused the tool the rule names, and alice is not.
    let bob = client_with(&server, Some(&authority.client("bob", "contractors")?))?;
    let call_uuid = |client: reqwest::Client| {
        let server = &server;
        async move {
            server
                .stateless_with(
                    &client,
                    None,
                    "tools/call",
                    json!({"name": "uuid", "arguments": {}}),
                )
                .await
        }
    };
    let allowed = call_uuid(alice.clone()).await?.response()?;
    assert!(allowed.get("result").is_some(), "{allowed}");
    let refused = call_uuid(bob).await?.json();
    assert!(
        refused.get("error").is_some() || refused["result"]["isError"] == true,
        "{refused}"
    );

    // No certificate, or one another CA signed: the handshake ends in the
    // server's alert, so no TLS session carries a request at all.
    let anonymous = client_with(&server, None)?;
    assert!(
        server
            .stateless_with(&anonymous, None, "tools/list", json!({}))
            .await
            .is_err()
    );
    assert_eq!(
        refusal(&server, None).await?,
        AlertDescription::CertificateRequired
    );
    let stranger = Authority::new("Other CA")?.client("alice", "platform")?;
    assert_eq!(
        refusal(&server, Some(&stranger)).await?,
        AlertDescription::UnknownCA
    );
    Ok(())
}

#[tokio::test]
async fn an_optional_client_certificate_adds_to_a_token() -> anyhow::Result<()> {
    let (server, authority) =
        start(|ca| format!("[tls]\nclient_ca = {ca:?}\nclient_auth = \"optional\"\n")).await?;
    let token = server
        .token
        .clone()
        .context("embedded auth mints a token")?;
    // Without a certificate the handshake succeeds and the token decides.
    let plain = client_with(&server, None)?;
    let listed = server
        .stateless_with(&plain, Some(&token), "tools/list", json!({}))
        .await?;
    assert_eq!(listed.status, 200);
    // A certificate alone is not a credential in the token modes.
    let alice = client_with(&server, Some(&authority.client("alice", "platform")?))?;
    let refused = server
        .stateless_with(&alice, None, "tools/list", json!({}))
        .await?;
    assert_eq!(refused.status, 401);
    // And a certificate from an unknown CA is refused in the handshake even
    // when optional.
    let stranger = Authority::new("Other CA")?.client("eve", "x")?;
    assert_eq!(
        refusal(&server, Some(&stranger)).await?,
        AlertDescription::UnknownCA
    );
    Ok(())
}
