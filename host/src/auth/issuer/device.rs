//! The device authorization grant (RFC 8628), for signing in where there is
//! no browser (over SSH): the client gets a short user code and a URL, the
//! user opens the URL anywhere, signs in and enters the code, and the client
//! polls `/token` until the user has approved or refused.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authorize::{
    Change, MAX_ATTEMPTS, cookie, display_name, error_page, escape, page, set_cookie,
};
use super::store::{self, Client};
use super::token::{Form, authenticated_form};
use super::{Grant, Issuer, OAuthError};
use crate::auth::principal::parse_scopes;
use crate::limits::ClientRange;

pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CODE_TTL_SECS: u64 = 600;
const INTERVAL_SECS: u64 = 5;
const FORM_COOKIE: &str = "__Host-toolhost-device";
/// Consonants only: no vowels means no words, and nothing to confuse
/// (RFC 8628 §6.1).
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const MAX_DEVICES: u64 = 10_000;
/// Device codes in flight from one client range, for the reason and with
/// the bound of the sign-ins in progress.
const MAX_DEVICES_PER_RANGE: u64 = super::authorize::MAX_PENDING_PER_RANGE;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
enum Status {
    Pending,
    Approved {
        subject: String,
        groups: Vec<String>,
    },
    Denied,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Device {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    user_code: String,
    interval: u64,
    last_poll: u64,
    status: Status,
    /// Ties the approval form to the browser that opened it.
    csrf: String,
    /// Where the grant was started, for the per-range bound.
    range: Option<ClientRange>,
    /// Wrong passwords entered for this code.
    attempts: u32,
}

/// Kinds of flow records: device grants by device code, and the device
/// code each user code stands for.
const DEVICE: &str = "device";
const USER_CODE: &str = "user_code";

fn user_code() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let letters: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// What users type: case and separators do not matter.
fn normalize_user_code(text: &str) -> String {
    let letters: String = text
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

impl Issuer {
    /// The device grant a user code stands for, with its device code.
    async fn device_by_user_code(&self, user_code: &str) -> Option<(String, Device)> {
        let now = store::now();
        let device_code = self.store.flow(USER_CODE, user_code, now).await.ok()??;
        let body = self.store.flow(DEVICE, &device_code, now).await.ok()??;
        Some((device_code, serde_json::from_str(&body).ok()?))
    }

    /// Changes a device grant with `change` (see [`Issuer::change_flow`]);
    /// a grant removed takes its user code with it.
    async fn change_device<T>(
        &self,
        device_code: &str,
        change: impl Fn(&mut Device) -> Change<T>,
    ) -> Option<T> {
        let removing = |device: &mut Device| match change(device) {
            Change::Remove(answer) => Change::Remove((true, answer)),
            Change::Keep(answer) => Change::Keep((false, answer)),
        };
        let (device, (removed, answer)) = self.change_flow(DEVICE, device_code, removing).await?;
        if removed && let Err(err) = self.store.drop_flow(USER_CODE, &device.user_code).await {
            tracing::error!("removing a user code: {err}");
        }
        Some(answer)
    }
}

/// `POST /device_authorization`.
pub(super) async fn start(
    State(issuer): State<Arc<Issuer>>,
    range: Option<Extension<ClientRange>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, client) = match authenticated_form(&issuer, &headers, &body).await {
        Ok(pair) => pair,
        Err(error) => return error.into_response(),
    };
    if !client.grant_types.iter().any(|g| g == GRANT_TYPE) {
        return OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client did not register the device_code grant",
        )
        .into_response();
    }
    let allowed = parse_scopes(&client.scope);
    let scopes = match form.get("scope") {
        None => allowed,
        Some(requested) => {
            let requested = parse_scopes(requested);
            if requested.iter().any(|s| !allowed.contains(s)) {
                return OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "a requested scope is not available",
                )
                .into_response();
            }
            requested
        }
    };
    let device_code = store::random_secret();
    let code = user_code();
    let device = Device {
        client_id: client.client_id.clone(),
        client_name: display_name(&client),
        scopes,
        user_code: code.clone(),
        interval: INTERVAL_SECS,
        last_poll: 0,
        status: Status::Pending,
        csrf: store::random_secret(),
        range: range.map(|Extension(range)| range),
        attempts: 0,
    };
    let stored = match serde_json::to_string(&device) {
        Ok(body) => {
            let now = store::now();
            let range = device.range.map(|r| r.to_string());
            let put = |kind: &'static str, id: String, body: String, range: Option<String>| {
                let store = issuer.store.clone();
                async move {
                    store
                        .put_flow(
                            kind,
                            &id,
                            &body,
                            now + CODE_TTL_SECS,
                            range.as_deref(),
                            MAX_DEVICES,
                            MAX_DEVICES_PER_RANGE,
                            now,
                        )
                        .await
                }
            };
            matches!(
                put(DEVICE, device_code.clone(), body, range).await,
                Ok(Ok(()))
            ) && matches!(
                put(USER_CODE, code.clone(), device_code.clone(), None).await,
                Ok(Ok(()))
            )
        }
        Err(_) => false,
    };
    if !stored {
        return OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many sign-ins in progress",
        )
        .into_response();
    }
    let verification = format!("{}/device", issuer.settings.issuer);
    (
        StatusCode::OK,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "device_code": device_code,
            "user_code": code,
            "verification_uri": verification,
            "verification_uri_complete": format!("{verification}?user_code={code}"),
            "expires_in": CODE_TTL_SECS,
            "interval": INTERVAL_SECS,
        })),
    )
        .into_response()
}

/// The `/token` grant: pending, slow down, refused, expired, or tokens.
pub(super) async fn poll(
    issuer: &Issuer,
    client: &Client,
    form: &Form,
) -> Result<Grant, OAuthError> {
    let device_code = form.get("device_code").ok_or_else(|| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing parameter device_code",
        )
    })?;
    let now = store::now();
    let answer = issuer
        .change_device(device_code, |device| {
            if device.client_id != client.client_id {
                return Change::Keep(Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the device code belongs to another client",
                )));
            }
            match device.status.clone() {
                Status::Pending => {
                    let too_soon = now < device.last_poll + device.interval;
                    device.last_poll = now;
                    Change::Keep(Err(if too_soon {
                        device.interval += 5;
                        OAuthError::new(StatusCode::BAD_REQUEST, "slow_down", "polling too often")
                    } else {
                        OAuthError::new(
                            StatusCode::BAD_REQUEST,
                            "authorization_pending",
                            "the user has not answered yet",
                        )
                    }))
                }
                Status::Denied => Change::Remove(Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "access_denied",
                    "the user declined",
                ))),
                Status::Approved { subject, groups } => Change::Remove(Ok(Grant {
                    subject,
                    client_id: client.client_id.clone(),
                    scopes: device.scopes.clone(),
                    groups,
                })),
            }
        })
        .await;
    answer.unwrap_or_else(|| {
        Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the device code has expired; start again",
        ))
    })
}

/// `GET /device[?user_code=…]`: the page where the user enters the code and signs in.
pub(super) async fn show(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let code = params
        .get("user_code")
        .map(|c| normalize_user_code(c))
        .unwrap_or_default();
    let device = issuer.device_by_user_code(&code).await.map(|(_, d)| d);
    let Some(device) = device else {
        let message = if code.is_empty() {
            ""
        } else {
            "<p class=\"error\">That code is unknown or has expired.</p>"
        };
        return page(
            if code.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            &format!(
                "<h1>Sign in a device</h1>\n{message}<form method=\"get\" action=\"/device\">\
                 <label>Code shown by the device <input name=\"user_code\" autocomplete=\"off\" required autofocus></label>\
                 <button>Continue</button></form>"
            ),
        );
    };
    let signed_in = issuer.signed_in(&headers).await.map(|(name, _)| name);
    let who = match &signed_in {
        Some(name) => format!("<p>Signed in as <b>{}</b>.</p>", escape(name)),
        None => "<label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label>\n\
                 <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>"
            .to_string(),
    };
    let mut response = page(
        StatusCode::OK,
        &format!(
            "<h1>Sign in a device</h1>\n<p><b>{client}</b> asks to use this server's tools as you.</p>\n{grants}\
             <p>Check that the device shows the code <b>{code}</b>.</p>\n\
             <form method=\"post\" action=\"/device\">\n\
             <input type=\"hidden\" name=\"user_code\" value=\"{code}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n{who}\n\
             <button name=\"action\" value=\"allow\">Allow</button> \
             <button name=\"action\" value=\"deny\" formnovalidate>Deny</button>\n</form>",
            client = escape(&device.client_name),
            grants = super::consent::grants_html(&device.scopes, &issuer.tool_summary()),
            code = escape(&device.user_code),
            csrf = escape(&device.csrf),
        ),
    );
    set_cookie(&mut response, FORM_COOKIE, &device.csrf, CODE_TTL_SECS);
    response
}

/// `POST /device`: approves or refuses the device, after signing the user in.
pub(super) async fn submit(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&headers, &body) else {
        return error_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let code = normalize_user_code(form.get("user_code").unwrap_or_default());
    let Some((device_code, device)) = issuer.device_by_user_code(&code).await else {
        return error_page(
            StatusCode::NOT_FOUND,
            "That code is unknown or has expired.",
        );
    };
    // The csrf value must come back both in the form and in the cookie the
    // page set: a foreign page can do neither.
    let csrf = form.get("csrf").unwrap_or_default();
    if csrf != device.csrf || cookie(&headers, FORM_COOKIE) != Some(csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form was not opened in this browser. Open the link again.",
        );
    }
    if !matches!(device.status, Status::Pending) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This device has already been answered.",
        );
    }
    let status = if form.get("action") != Some("allow") {
        Status::Denied
    } else {
        let (subject, groups) = match issuer.signed_in(&headers).await {
            Some(user) => user,
            None => match issuer
                .check_password(&form, &device.client_id, "device sign-in")
                .await
            {
                Ok(Some(user)) => (user.name, user.groups),
                Ok(None) => return wrong_password(&issuer, &device_code).await,
                Err(response) => return response,
            },
        };
        Status::Approved { subject, groups }
    };
    let approved = matches!(status, Status::Approved { .. });
    let answered = issuer
        .change_device(&device_code, |entry| {
            // Answered once: a racing answer on another replica loses.
            let fresh = matches!(entry.status, Status::Pending);
            if fresh {
                entry.status = status.clone();
            }
            Change::Keep(fresh)
        })
        .await;
    if answered != Some(true) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This device has already been answered, or its code expired.",
        );
    }
    let mut response = page(
        StatusCode::OK,
        if approved {
            "<h1>Device signed in</h1><p>You can close this page and return to the device.</p>"
        } else {
            "<h1>Refused</h1><p>The device was not signed in.</p>"
        },
    );
    set_cookie(&mut response, FORM_COOKIE, "", 0);
    response
}

/// Counts a wrong password against the device code; the last allowed one
/// spends the code, so one code cannot be used to guess on and on.
async fn wrong_password(issuer: &Issuer, device_code: &str) -> Response {
    let spent = issuer
        .change_device(device_code, |device| {
            device.attempts += 1;
            if device.attempts >= MAX_ATTEMPTS {
                Change::Remove(true)
            } else {
                Change::Keep(false)
            }
        })
        .await;
    match spent {
        None => error_page(
            StatusCode::NOT_FOUND,
            "That code is unknown or has expired.",
        ),
        Some(true) => error_page(
            StatusCode::FORBIDDEN,
            "Too many failed attempts. Start again on the device.",
        ),
        Some(false) => error_page(
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password. Open the link again.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_unambiguous_and_forgiving() {
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert!(
            code.chars()
                .all(|c| c == '-' || ALPHABET.contains(&(c as u8))),
            "{code}"
        );
        assert_eq!(normalize_user_code("bcdf ghjk"), "BCDF-GHJK");
        assert_eq!(normalize_user_code("BCDF-GHJK"), "BCDF-GHJK");
    }
}
