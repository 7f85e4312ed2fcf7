//! `POST /token` (RFC 6749 §3.2 with OAuth 2.1's rules) and `POST /revoke`
//! (RFC 7009).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::store::{self, Client, Family, Rotation, constant_time_eq};
use super::{Grant, Issuer, OAuthError, users};
use crate::audit::Event;
use crate::auth::principal::parse_scopes;

/// Form parameters, each at most once (RFC 6749 §3.2: repeated parameters
/// are an error, not a choice).
pub(super) struct Form(HashMap<String, String>);

impl Form {
    pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form_type {
            return Err(bad_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| bad_request(&format!("malformed form body: {e}")))?;
        let mut map = HashMap::new();
        for (key, value) in pairs {
            if map.insert(key.clone(), value).is_some() {
                return Err(bad_request(&format!("parameter {key} is repeated")));
            }
        }
        Ok(Form(map))
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| bad_request(&format!("missing parameter {key}")))
    }
}

fn bad_request(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// 401 `invalid_client`: clients that registered dynamically register
/// again when they see it.
fn invalid_client(description: &str, basic: bool) -> OAuthError {
    let error = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if basic {
        error.with_basic_challenge()
    } else {
        error
    }
}

/// Authenticates the client by `client_secret_basic`, `client_secret_post`
/// or, for public clients, `client_id` alone.
pub(super) async fn authenticate(
    issuer: &Issuer,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Client, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, creds)| creds.trim().to_string());
    let (client_id, secret, by_header) = match basic {
        Some(encoded) => {
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid_client("malformed Basic credentials", true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| invalid_client("malformed Basic credentials", true))?;
            // RFC 6749 §2.3.1: both halves are form-urlencoded.
            let id: String = form_decode(id);
            let secret: String = form_decode(secret);
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(invalid_client(
                    "client_id differs from the Basic credentials",
                    true,
                ));
            }
            (id, Some(secret), true)
        }
        None => (
            form.require("client_id")
                .map_err(|_| invalid_client("client authentication is required", false))?
                .to_string(),
            form.get("client_secret").map(str::to_string),
            false,
        ),
    };
    let client = match issuer.client(&client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(invalid_client("unknown client; register again", by_header)),
        Err(super::ClientLookupError::State(err)) => {
            tracing::error!("looking up a client: {err}");
            return Err(server_error("the client registry could not be read"));
        }
        Err(err) => return Err(invalid_client(&err.to_string(), by_header)),
    };
    match (&client.secret_sha256, secret) {
        (None, None) => Ok(client),
        (None, Some(_)) => Err(invalid_client(
            "this public client has no secret",
            by_header,
        )),
        (Some(_), None) => Err(invalid_client(
            "this client must authenticate with its secret",
            by_header,
        )),
        (Some(expected), Some(secret)) => {
            if constant_time_eq(expected.as_bytes(), store::sha256_hex(&secret).as_bytes()) {
                Ok(client)
            } else {
                Err(invalid_client("wrong client secret", by_header))
            }
        }
    }
}

fn form_decode(text: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={text}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map_or_else(|| text.to_string(), |(_, v)| v)
}

/// The form of a request to `/token` or `/revoke` and the client that
/// authenticated it.
pub(super) async fn authenticated_form(
    issuer: &Issuer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, Client), OAuthError> {
    let form = Form::parse(headers, body)?;
    let client = authenticate(issuer, headers, &form).await?;
    Ok((form, client))
}

pub(super) async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, client) = match authenticated_form(&issuer, &headers, &body).await {
        Ok(pair) => pair,
        Err(error) => return error.into_response(),
    };
    if let Some(resource) = form.get("resource")
        && !issuer.is_resource(resource)
    {
        return OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            &format!(
                "this server issues tokens for {} only",
                issuer.settings.resource
            ),
        )
        .into_response();
    }
    let grant_type = match form.require("grant_type") {
        Ok(g) => g,
        Err(error) => return error.into_response(),
    };
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("this client may not use the {grant_type} grant"),
        )
        .into_response();
    }
    let result: Result<Response, OAuthError> = match grant_type {
        "client_credentials" => client_credentials(&issuer, &client, &form).await,
        "authorization_code" => authorization_code(&issuer, &client, &form).await,
        "refresh_token" => refresh(&issuer, &client, &form).await,
        super::device::GRANT_TYPE => match super::device::poll(&issuer, &client, &form).await {
            Ok(grant) => issue(&issuer, &grant, Some(store::random_id())).await,
            Err(error) => Err(error),
        },
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type {other:?} is not supported (no password or implicit grants)"),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn client_credentials(
    issuer: &Issuer,
    client: &Client,
    form: &Form,
) -> Result<Response, OAuthError> {
    if client.secret_sha256.is_none() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "client_credentials needs a confidential client",
        ));
    }
    let scopes = narrow(form.get("scope"), &parse_scopes(&client.scope))?;
    let grant = Grant {
        subject: client.client_id.clone(),
        client_id: client.client_id.clone(),
        scopes,
        groups: Vec::new(),
    };
    issue(issuer, &grant, None).await
}

async fn authorization_code(
    issuer: &Issuer,
    client: &Client,
    form: &Form,
) -> Result<Response, OAuthError> {
    let code = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let verifier = form.require("code_verifier")?;
    let pending = match issuer.take_code(code).await {
        Ok(pending) => pending,
        Err(replayed) => {
            if let Some(family) = replayed {
                // RFC 6749 §4.1.2: a code used twice revokes what it produced.
                if let Err(err) = issuer.store.revoke_family(&family, None).await {
                    tracing::error!("revoking the tokens of a replayed code: {err}");
                }
                issuer.security_event(
                    Event::RefreshTokenReuse,
                    None,
                    Some(&client.client_id),
                    "authorization code replayed; its tokens were revoked".into(),
                );
            }
            return Err(invalid_grant(
                "the authorization code is invalid, expired or already used",
            ));
        }
    };
    if pending.client_id != client.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if pending.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri differs from the one in the authorization request",
        ));
    }
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !valid_verifier || !constant_time_eq(computed.as_bytes(), pending.code_challenge.as_bytes())
    {
        return Err(invalid_grant(
            "PKCE verification failed: code_verifier does not match code_challenge",
        ));
    }
    let grant = Grant {
        subject: pending.subject,
        client_id: client.client_id.clone(),
        scopes: pending.scopes,
        groups: pending.groups,
    };
    let family = store::random_id();
    issuer.spend_code(code, &family).await;
    issue(issuer, &grant, Some(family)).await
}

async fn refresh(issuer: &Issuer, client: &Client, form: &Form) -> Result<Response, OAuthError> {
    let presented = form.require("refresh_token")?;
    let (family_id, secret) = presented
        .split_once('.')
        .ok_or_else(|| invalid_grant("malformed refresh token"))?;
    let gone = || invalid_grant("the refresh token is invalid, expired or revoked");
    let family = issuer
        .store
        .family(family_id)
        .await
        .map_err(|err| {
            tracing::error!("reading a refresh-token family: {err}");
            server_error("could not read the sign-in")
        })?
        .ok_or_else(gone)?;
    if family.client_id != client.client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // The user may have been removed or regrouped since signing in: the
    // users file decides, not what the sign-in saw.
    let user = users::find(&issuer.store, &family.subject)
        .await
        .map_err(|err| {
            tracing::error!("reading users: {err}");
            server_error("the user list could not be read")
        })?;
    let Some(user) = user else {
        if let Err(err) = issuer
            .store
            .revoke_family(family_id, Some(&client.client_id))
            .await
        {
            tracing::error!("revoking the sign-in of a removed user: {err}");
        }
        issuer.security_event(
            Event::TokenRevoked,
            Some(&family.subject),
            Some(&client.client_id),
            "the user no longer exists; the sign-in was revoked".into(),
        );
        return Err(gone());
    };
    let scopes = narrow(form.get("scope"), &family.scopes)?;
    let grant = Grant {
        subject: family.subject,
        client_id: client.client_id.clone(),
        scopes,
        groups: user.groups,
    };
    // Signed before the rotation, so a signing failure leaves the
    // presented token usable.
    let access = access_token(issuer, &grant)?;
    let next = store::random_secret();
    let rotation = issuer
        .store
        .rotate(
            family_id,
            &client.client_id,
            &store::sha256_hex(secret),
            &store::sha256_hex(&next),
            store::now(),
        )
        .await
        .map_err(|err| {
            tracing::error!("saving a refresh token: {err}");
            server_error("could not save the sign-in")
        })?;
    match rotation {
        Rotation::Rotated => Ok(respond(
            issuer,
            &grant,
            access,
            Some(format!("{family_id}.{next}")),
        )),
        Rotation::Reused(family) => {
            // An older token of the family: it was used before, so someone
            // holds a copy. The whole sign-in is revoked.
            issuer.security_event(
                Event::RefreshTokenReuse,
                Some(&family.subject),
                Some(&client.client_id),
                "a rotated refresh token was presented again; the token family was revoked".into(),
            );
            Err(invalid_grant(
                "the refresh token was already used; the sign-in was revoked",
            ))
        }
        Rotation::Expired => Err(invalid_grant(
            "the refresh token has expired; sign in again",
        )),
        Rotation::Gone => Err(gone()),
    }
}

/// The requested scopes if they are within `allowed`, else all of `allowed`.
fn narrow(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let requested = parse_scopes(requested);
    if let Some(extra) = requested.iter().find(|s| !allowed.contains(s)) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("scope {extra:?} is not available to this client"),
        ));
    }
    Ok(requested)
}

fn server_error(description: &str) -> OAuthError {
    OAuthError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        description,
    )
}

fn access_token(issuer: &Issuer, grant: &Grant) -> Result<String, OAuthError> {
    issuer
        .access_token(grant, issuer.settings.access_token_ttl)
        .map_err(|err| {
            tracing::error!("signing an access token: {err:#}");
            server_error("could not sign a token")
        })
}

/// Answers with an access token and, for a new sign-in (`family`), the
/// first refresh token of a family started for it.
async fn issue(
    issuer: &Issuer,
    grant: &Grant,
    family: Option<String>,
) -> Result<Response, OAuthError> {
    let access = access_token(issuer, grant)?;
    let refresh = match family {
        None => None,
        Some(family_id) => {
            let secret = store::random_secret();
            let family = Family {
                client_id: grant.client_id.clone(),
                subject: grant.subject.clone(),
                scopes: grant.scopes.clone(),
                groups: grant.groups.clone(),
                expires: store::now() + issuer.settings.refresh_token_ttl.as_secs(),
                current_sha256: store::sha256_hex(&secret),
            };
            if let Err(err) = issuer
                .store
                .create_family(&family_id, &family, store::now())
                .await
            {
                tracing::error!("saving a refresh token: {err}");
                return Err(server_error("could not save the sign-in"));
            }
            Some(format!("{family_id}.{secret}"))
        }
    };
    Ok(respond(issuer, grant, access, refresh))
}

fn respond(issuer: &Issuer, grant: &Grant, access: String, refresh: Option<String>) -> Response {
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": issuer.settings.access_token_ttl.as_secs(),
        "scope": grant.scopes.join(" "),
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    issuer.security_event(
        Event::TokenIssued,
        Some(&grant.subject),
        Some(&grant.client_id),
        format!("scope {:?}", grant.scopes.join(" ")),
    );
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// RFC 7009: a refresh token of the calling client ends its whole sign-in.
/// Access tokens are short-lived JWTs and simply expire. Unknown tokens get
/// 200 too, so the endpoint reveals nothing.
pub(super) async fn revoke(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, client) = match authenticated_form(&issuer, &headers, &body).await {
        Ok(pair) => pair,
        Err(error) => return error.into_response(),
    };
    let token = match form.require("token") {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    if let Some((family_id, _)) = token.split_once('.') {
        match issuer
            .store
            .revoke_family(family_id, Some(&client.client_id))
            .await
        {
            Ok(true) => issuer.security_event(
                Event::TokenRevoked,
                None,
                Some(&client.client_id),
                "refresh token revoked".into(),
            ),
            Ok(false) => {}
            Err(err) => {
                tracing::error!("revoking a refresh token: {err}");
                return server_error("could not revoke the token").into_response();
            }
        }
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn repeated_parameters_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(Form::parse(&headers, b"a=1&a=2").is_err());
        let form = Form::parse(&headers, b"a=1&b=x%20y")
            .map_err(|_| ())
            .expect("form");
        assert_eq!(form.get("b"), Some("x y"));
        assert!(Form::parse(&HeaderMap::new(), b"a=1").is_err());
    }

    #[test]
    fn scopes_can_only_narrow() {
        let allowed = vec!["read".to_string(), "write".to_string()];
        assert_eq!(
            narrow(Some("read"), &allowed).map_err(|_| ()),
            Ok(vec!["read".to_string()])
        );
        assert_eq!(narrow(None, &allowed).map_err(|_| ()), Ok(allowed.clone()));
        assert!(narrow(Some("admin"), &allowed).is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab"), "a:b");
        assert_eq!(form_decode("plain"), "plain");
    }
}
