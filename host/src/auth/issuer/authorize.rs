//! `GET/POST /authorize`: the authorization-code flow's user-facing half. A
//! server-rendered page signs the user in (names and argon2 hashes from the
//! users file) and asks for consent, which is remembered per user and client.
//!
//! CSRF: the page's form carries the flow id and a random token; the POST
//! must present the same flow id in a `__Host-` cookie (which a foreign page
//! can neither read nor set) and the matching token. Each flow completes at
//! most once, and each code is redeemable once.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::passwords::CheckError;
use super::register::redirect_matches;
use super::store::{self, Client};
use super::token::Form;
use super::{Issuer, users};
use crate::audit::Event;
use crate::auth::keys::now_ms;
use crate::auth::principal::parse_scopes;
use crate::limits::ClientRange;

const FLOW_COOKIE: &str = "__Host-toolhost-flow";
const SESSION_COOKIE: &str = "__Host-toolhost-session";
const FLOW_TTL_SECS: u64 = 600;
const CODE_TTL_SECS: u64 = 60;
const SESSION_TTL_SECS: u64 = 12 * 3600;
/// Wrong passwords one sign-in (or device code) takes before it is spent.
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// Bounds on each kind of flow record, so unauthenticated requests cannot
/// grow the table without limit.
const MAX_FLOWS: u64 = 10_000;
/// Sign-ins in progress from one client range (an IPv4 address, an IPv6
/// /64 by default), so that one range cannot fill the table for everyone.
/// Generous for a NAT full of people signing in at once; a flow that
/// completes leaves at once, an abandoned one after `FLOW_TTL_SECS`.
pub(super) const MAX_PENDING_PER_RANGE: u64 = 100;

/// Kinds of records in the state database's flow table.
const PENDING: &str = "pending";
const CODE: &str = "code";
const SPENT: &str = "spent";
const SESSION: &str = "session";

/// A code redeemed already, until it would have expired: the refresh
/// family it produced, to revoke it if the code is replayed.
#[derive(Serialize, Deserialize)]
struct Spent {
    family: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Pending {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scopes: Vec<String>,
    /// The tools the scopes reach, as the page first described them.
    tools: super::ToolSummary,
    csrf: String,
    attempts: u32,
    /// Where the sign-in came from, for the per-range bound.
    range: Option<ClientRange>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) subject: String,
    pub(crate) groups: Vec<String>,
    pub(crate) scopes: Vec<String>,
}

/// Groups are not kept: they are read from the user list at each use.
#[derive(Serialize, Deserialize)]
struct BrowserSession {
    subject: String,
}

/// What a change to a flow record asks for.
pub(super) enum Change<T> {
    /// Store the changed record; answer `T`.
    Keep(T),
    /// The record is answered or spent: remove it; answer `T`.
    Remove(T),
}

impl Issuer {
    /// Changes a live flow record with `change` as one compare-and-swap on
    /// its body (retried when another replica changed it first, at most 8
    /// rounds), so counts kept in it hold across replicas. The changed
    /// record and `change`'s answer, or `None` when there is no such live
    /// record (or another replica removed it first). A removal is a take:
    /// of replicas racing to remove, one answers.
    pub(super) async fn change_flow<R, T>(
        &self,
        kind: &str,
        id: &str,
        change: impl Fn(&mut R) -> Change<T>,
    ) -> Option<(R, T)>
    where
        R: Serialize + serde::de::DeserializeOwned,
    {
        for _ in 0..8 {
            let body = match self.store.flow(kind, id, store::now()).await {
                Ok(Some(body)) => body,
                Ok(None) => return None,
                Err(err) => {
                    tracing::error!("reading a sign-in record: {err}");
                    return None;
                }
            };
            let mut record: R = serde_json::from_str(&body).ok()?;
            match change(&mut record) {
                Change::Remove(answer) => {
                    let taken = self.store.take_flow(kind, id, store::now()).await;
                    return matches!(taken, Ok(Some(_))).then_some((record, answer));
                }
                Change::Keep(answer) => {
                    let next = serde_json::to_string(&record).ok()?;
                    match self.store.swap_flow(kind, id, &body, &next).await {
                        Ok(true) => return Some((record, answer)),
                        Ok(false) => continue,
                        Err(err) => {
                            tracing::error!("saving a sign-in record: {err}");
                            return None;
                        }
                    }
                }
            }
        }
        None
    }

    /// A live flow record of `kind`, decoded.
    async fn flow<T: serde::de::DeserializeOwned>(&self, kind: &str, id: &str) -> Option<T> {
        match self.store.flow(kind, id, store::now()).await {
            Ok(body) => body.and_then(|body| serde_json::from_str(&body).ok()),
            Err(err) => {
                tracing::error!("reading a sign-in record: {err}");
                None
            }
        }
    }

    /// Stores a flow record; `false` when the bounds are reached or the
    /// database failed (both mean: try again shortly).
    async fn put_flow(
        &self,
        kind: &str,
        id: &str,
        record: &impl Serialize,
        ttl_secs: u64,
        range: Option<ClientRange>,
    ) -> bool {
        let Ok(body) = serde_json::to_string(record) else {
            return false;
        };
        let now = store::now();
        let range = range.map(|r| r.to_string());
        match self
            .store
            .put_flow(
                kind,
                id,
                &body,
                now + ttl_secs,
                range.as_deref(),
                MAX_FLOWS,
                MAX_PENDING_PER_RANGE,
                now,
            )
            .await
        {
            Ok(Ok(())) => true,
            Ok(Err(refusal)) => {
                tracing::info!(kind, ?refusal, "sign-in record refused: bound reached");
                false
            }
            Err(err) => {
                tracing::error!("saving a sign-in record: {err}");
                false
            }
        }
    }

    async fn drop_flow(&self, kind: &str, id: &str) {
        if let Err(err) = self.store.drop_flow(kind, id).await {
            tracing::error!("removing a sign-in record: {err}");
        }
    }

    /// Whether `resource` names this server (RFC 8707 `resource` parameter).
    pub(crate) fn is_resource(&self, resource: &str) -> bool {
        let resource = resource.trim_end_matches('/');
        resource == self.settings.resource || resource == self.settings.issuer
    }

    /// Takes a code for redemption. `Err(Some(family))` when it was already
    /// redeemed, naming what that redemption produced.
    pub(crate) async fn take_code(&self, code: &str) -> Result<Code, Option<String>> {
        match self.store.take_flow(CODE, code, store::now()).await {
            Ok(Some(body)) => {
                if let Ok(found) = serde_json::from_str(&body) {
                    return Ok(found);
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!("redeeming a code: {err}");
                return Err(None);
            }
        }
        Err(self.flow::<Spent>(SPENT, code).await.map(|s| s.family))
    }

    pub(crate) async fn spend_code(&self, code: &str, family: &str) {
        let spent = Spent {
            family: family.to_string(),
        };
        self.put_flow(SPENT, code, &spent, CODE_TTL_SECS, None)
            .await;
    }
}

type Params = HashMap<String, String>;

pub(super) async fn show(
    State(issuer): State<Arc<Issuer>>,
    range: Option<Extension<ClientRange>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // Until the client and redirect URI are known good, errors are shown
    // here, never sent to an unverified redirect.
    let Some(client_id) = get("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "The request has no client_id.");
    };
    let client = match issuer.client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This application is not registered with this server. It should register again.",
            );
        }
        Err(super::ClientLookupError::State(err)) => {
            tracing::error!("looking up a client: {err}");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is unavailable for a moment. Try again shortly.",
            );
        }
        Err(err) => {
            tracing::info!(
                client = client_id,
                "client metadata document refused: {err}"
            );
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("This application's metadata cannot be used: {err}."),
            );
        }
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(StatusCode::BAD_REQUEST, "The request has no redirect_uri.");
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri))
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not one this application registered.",
        );
    }
    let state = get("state").map(str::to_string);
    let fail = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", state.as_deref().unwrap_or_default()),
                ("iss", &issuer.settings.issuer),
            ],
        )
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            "PKCE is required: send code_challenge with S256",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if challenge.len() != 43 {
        return fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 digest",
        );
    }
    if let Some(resource) = get("resource")
        && !issuer.is_resource(resource)
    {
        return fail("invalid_target", "resource names another server");
    }
    let allowed = parse_scopes(&client.scope);
    let scopes = match get("scope") {
        None => allowed,
        Some(requested) => {
            let requested = parse_scopes(requested);
            if requested.iter().any(|s| !allowed.contains(s)) {
                return fail("invalid_scope", "a requested scope is not available");
            }
            requested
        }
    };
    let pending = Pending {
        client_id: client.client_id.clone(),
        client_name: display_name(&client),
        redirect_uri: redirect_uri.to_string(),
        state,
        code_challenge: challenge.to_string(),
        scopes,
        tools: issuer.tool_summary(),
        csrf: store::random_secret(),
        attempts: 0,
        range: range.map(|Extension(range)| range),
    };
    let session = issuer.signed_in(&headers).await;
    if let Some((subject, groups)) = &session
        && issuer
            .consented(subject, &pending.client_id, &pending.scopes)
            .await
    {
        return complete(&issuer, &pending, subject, groups).await;
    }
    let flow_id = store::random_id();
    if !issuer
        .put_flow(PENDING, &flow_id, &pending, FLOW_TTL_SECS, pending.range)
        .await
    {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins in progress; try again shortly.",
        );
    }
    let mut response = page(
        StatusCode::OK,
        &form_html(
            &flow_id,
            &pending,
            session.as_ref().map(|s| s.0.as_str()),
            None,
        ),
    );
    set_cookie(&mut response, FLOW_COOKIE, &flow_id, FLOW_TTL_SECS);
    response
}

pub(super) async fn submit(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match Form::parse(&headers, &body) {
        Ok(form) => form,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "The form could not be read."),
    };
    let flow_id = form.get("flow").unwrap_or_default().to_string();
    if cookie(&headers, FLOW_COOKIE) != Some(flow_id.as_str()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form was not opened in this browser (or cookies are off). Start signing in again from the application.",
        );
    }
    let Some(pending) = issuer.flow::<Pending>(PENDING, &flow_id).await else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was already completed. Start again from the application.",
        );
    };
    if form.get("csrf") != Some(pending.csrf.as_str()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The form's security token does not match.",
        );
    }
    if form.get("action") != Some("allow") {
        issuer.drop_flow(PENDING, &flow_id).await;
        return redirect_with(
            &pending.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user declined"),
                ("state", pending.state.as_deref().unwrap_or_default()),
                ("iss", &issuer.settings.issuer),
            ],
        );
    }
    let session = issuer.signed_in(&headers).await;
    let (subject, groups, new_session) = match session {
        Some((subject, groups)) => (subject, groups, None),
        None => match issuer
            .check_password(&form, &pending.client_id, "sign-in")
            .await
        {
            Ok(Some(user)) => (user.name, user.groups, Some(store::random_secret())),
            Ok(None) => return wrong_password(&issuer, &flow_id).await,
            Err(response) => return response,
        },
    };
    // Single use: whoever removes the flow completes it, on any replica.
    let taken = issuer
        .store
        .take_flow(PENDING, &flow_id, store::now())
        .await
        .unwrap_or_else(|err| {
            tracing::error!("completing a sign-in: {err}");
            None
        });
    if taken.is_none() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in was already completed.",
        );
    }
    let remembered = issuer
        .store
        .add_consent(&subject, &pending.client_id, &pending.scopes)
        .await;
    if let Err(err) = remembered {
        tracing::error!("saving consent: {err}");
    }
    let mut response = complete(&issuer, &pending, &subject, &groups).await;
    if let Some(session_id) = new_session
        && issuer
            .put_flow(
                SESSION,
                &session_id,
                &BrowserSession { subject },
                SESSION_TTL_SECS,
                None,
            )
            .await
    {
        set_cookie(&mut response, SESSION_COOKIE, &session_id, SESSION_TTL_SECS);
    }
    set_cookie(&mut response, FLOW_COOKIE, "", 0);
    response
}

/// Counts a wrong password against the flow (a compare-and-swap on its
/// record, so attempts on several replicas all count) and shows the form
/// again, or ends the flow after [`MAX_ATTEMPTS`].
async fn wrong_password(issuer: &Issuer, flow_id: &str) -> Response {
    let counted = issuer
        .change_flow(PENDING, flow_id, |entry: &mut Pending| {
            entry.attempts += 1;
            if entry.attempts >= MAX_ATTEMPTS {
                Change::Remove(false)
            } else {
                Change::Keep(true)
            }
        })
        .await;
    let current = match counted {
        Some((entry, true)) => entry,
        Some((_, false)) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Too many failed attempts. Start again from the application.",
            );
        }
        None => return error_page(StatusCode::BAD_REQUEST, "This sign-in has expired."),
    };
    page(
        StatusCode::UNAUTHORIZED,
        &form_html(
            flow_id,
            &current,
            None,
            Some("Wrong user name or password."),
        ),
    )
}

impl Issuer {
    /// Checks the sign-in form's user name and password: the user, `None`
    /// for a wrong pair (recorded as a failed sign-in), or the error page,
    /// which is a 429 while the account backs off after failures. The
    /// argon2 run happens off the async threads, a bounded number at once.
    pub(super) async fn check_password(
        &self,
        form: &Form,
        client_id: &str,
        place: &str,
    ) -> Result<Option<users::User>, Response> {
        let name = form.get("username").unwrap_or_default().to_string();
        let password = form.get("password").unwrap_or_default().to_string();
        let admitted = match self.throttle.admit(&name, now_ms()).await {
            Ok(Ok(admitted)) => admitted,
            Ok(Err(refused)) => {
                tracing::info!(user = %name, "sign-in refused: the account is backing off");
                return Err(throttled_page(refused.retry_after));
            }
            // Fails closed: an attempt that cannot be counted is not made.
            Err(err) => {
                tracing::error!("counting a sign-in attempt: {err}");
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now. Try again in a moment.",
                ));
            }
        };
        // Read whether or not the name exists, then one argon2 run either
        // way: the time taken does not tell which names do.
        let stored = self.store.user(&name).await;
        let checked = self
            .password_checks
            .run(move || {
                stored
                    .map(|stored| users::verify(stored, &password))
                    .map_err(users::UsersError::from)
            })
            .await;
        match checked {
            Ok(Ok(Some(user))) => {
                if let Err(err) = self.throttle.succeeded(&name).await {
                    tracing::warn!("clearing an account's failed sign-ins: {err}");
                }
                Ok(Some(user))
            }
            Ok(Ok(None)) => {
                self.security_event(
                    Event::SignInFailed,
                    Some(&name),
                    Some(client_id),
                    format!("wrong user name or password ({place})"),
                );
                let Some(backoff) = admitted.locks else {
                    return Ok(None);
                };
                self.security_event(
                    Event::SignInThrottled,
                    Some(&name),
                    Some(client_id),
                    format!(
                        "at least {} failed sign-ins in a row; every attempt refused for {} s",
                        self.settings.password_failures,
                        backoff.as_secs()
                    ),
                );
                Err(throttled_page(backoff))
            }
            Ok(Err(err)) => {
                tracing::error!("reading users: {err}");
                Err(error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The user list could not be read.",
                ))
            }
            Err(CheckError::Busy) => {
                tracing::warn!("every password check slot is busy; a sign-in was turned away");
                let mut page = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many sign-ins are being checked right now. Try again in a moment.",
                );
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                Err(page)
            }
            Err(err) => {
                tracing::error!("password check failed: {err}");
                Err(error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The password could not be checked.",
                ))
            }
        }
    }

    /// The user this browser is signed in as (subject and current groups),
    /// if any. A session of a user no longer in the user list ends here.
    pub(super) async fn signed_in(&self, headers: &HeaderMap) -> Option<(String, Vec<String>)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let subject = self.flow::<BrowserSession>(SESSION, id).await?.subject;
        match users::find(&self.store, &subject).await {
            Ok(Some(user)) => Some((user.name, user.groups)),
            Ok(None) => {
                self.drop_flow(SESSION, id).await;
                None
            }
            Err(err) => {
                tracing::error!("reading users: {err}");
                None
            }
        }
    }

    /// Whether the user agreed to these scopes before; when the database
    /// cannot say, the consent page asks again.
    async fn consented(&self, subject: &str, client_id: &str, scopes: &[String]) -> bool {
        self.store
            .consented(subject, client_id, scopes)
            .await
            .unwrap_or_else(|err| {
                tracing::error!("reading consents: {err}");
                false
            })
    }
}

/// Issues a code and sends the browser back to the client.
async fn complete(
    issuer: &Issuer,
    pending: &Pending,
    subject: &str,
    groups: &[String],
) -> Response {
    let code = store::random_secret();
    let record = Code {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        subject: subject.to_string(),
        groups: groups.to_vec(),
        scopes: pending.scopes.clone(),
    };
    if !issuer
        .put_flow(CODE, &code, &record, CODE_TTL_SECS, None)
        .await
    {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The sign-in could not be saved; try again shortly.",
        );
    }
    redirect_with(
        &pending.redirect_uri,
        &[
            ("code", &code),
            ("state", pending.state.as_deref().unwrap_or_default()),
            ("iss", &issuer.settings.issuer),
        ],
    )
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = reqwest::Url::parse(uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not a valid URL.",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn display_name(client: &Client) -> String {
    client
        .client_name
        .clone()
        .unwrap_or_else(|| client.client_id.clone())
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

pub(super) fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: u64) {
    let cookie =
        format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(super) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn form_html(
    flow_id: &str,
    pending: &Pending,
    signed_in_as: Option<&str>,
    message: Option<&str>,
) -> String {
    let who = match signed_in_as {
        Some(name) => format!("<p>Signed in as <b>{}</b>.</p>", escape(name)),
        None => "<label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label>\n\
                 <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>"
            .to_string(),
    };
    let message = message.map_or_else(String::new, |m| {
        format!("<p class=\"error\">{}</p>", escape(m))
    });
    format!(
        "<h1>Sign in to toolhost</h1>\n{message}{request}{grants}\
         <p class=\"note\">Your answer is remembered for this application.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n{who}\n\
         <button name=\"action\" value=\"allow\">Allow</button> \
         <button name=\"action\" value=\"deny\" formnovalidate>Deny</button>\n</form>",
        request = super::consent::request_html(&pending.client_name, &pending.redirect_uri),
        grants = super::consent::grants_html(&pending.scopes, &pending.tools),
        flow = escape(flow_id),
        csrf = escape(&pending.csrf),
    )
}

/// 429 for an account that is backing off, with `Retry-After`.
fn throttled_page(retry_after: std::time::Duration) -> Response {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut page = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Too many failed sign-ins for this account. Try again in {seconds} seconds."),
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    page
}

pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        &format!("<h1>Cannot sign in</h1>\n<p>{}</p>", escape(message)),
    )
}

pub(super) fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>toolhost</title>\
         <style>body{{font:16px system-ui;max-width:28em;margin:3em auto;padding:0 1em}}\
         label{{display:block;margin:.6em 0}}input{{display:block;width:100%;padding:.3em}}\
         button{{margin-top:1em;padding:.4em 1.2em}}.error{{color:#b00}}\
         li{{margin:.3em 0}}.note{{color:#555;font-size:.9em}}.uri{{font-size:.85em;word-break:break-all}}</style></head>\
         <body>{body}</body></html>"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-toolhost-flow=abc; b=2"),
        );
        assert_eq!(cookie(&headers, FLOW_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "__Host-toolhost"), None);
    }

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }

    #[test]
    fn redirects_keep_existing_query_and_skip_empty_values() {
        let response = redirect_with("https://app.test/cb?x=1", &[("code", "c"), ("state", "")]);
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://app.test/cb?x=1&code=c"
        );
    }
}
