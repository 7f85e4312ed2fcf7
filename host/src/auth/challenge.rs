//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1): every 401
//! and 403 tells the client where the protected-resource metadata is and
//! which scopes to ask for, so a client with nothing but the URL can sign in.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

pub struct Challenge<'a> {
    metadata_url: &'a str,
    scope: String,
    error: Option<(&'static str, String)>,
}

impl<'a> Challenge<'a> {
    pub(crate) fn new(metadata_url: &'a str) -> Challenge<'a> {
        Challenge {
            metadata_url,
            scope: super::SCOPES.to_string(),
            error: None,
        }
    }

    /// An RFC 6750 error code with a human-readable description.
    pub fn error(mut self, code: &'static str, description: &str) -> Challenge<'a> {
        self.error = Some((code, description.to_string()));
        self
    }

    /// The scopes a new token needs.
    pub fn scope(mut self, scope: &str) -> Challenge<'a> {
        self.scope = scope.to_string();
        self
    }

    pub fn header_value(&self) -> String {
        let mut value = format!(
            "Bearer resource_metadata=\"{}\", scope=\"{}\"",
            quoted(self.metadata_url),
            quoted(&self.scope)
        );
        if let Some((code, description)) = &self.error {
            value.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                quoted(description)
            ));
        }
        value
    }

    /// 401: no token, or one that failed verification.
    pub fn unauthorized(self) -> Response {
        let body = match &self.error {
            Some((code, description)) => json!({"error": code, "error_description": description}),
            None => json!({
                "error": "unauthorized",
                "error_description": "this server needs a bearer token; see the resource_metadata in WWW-Authenticate",
            }),
        };
        self.respond(StatusCode::UNAUTHORIZED, &body)
    }

    /// 403 `insufficient_scope` with `body` (a JSON-RPC error for MCP requests).
    pub fn insufficient_scope(self, body: &Value) -> Response {
        let description = format!("this needs the {:?} scope", self.scope);
        self.error("insufficient_scope", &description)
            .respond(StatusCode::FORBIDDEN, body)
    }

    fn respond(self, status: StatusCode, body: &Value) -> Response {
        let mut response = crate::http::json_response(status, body);
        if let Ok(value) = HeaderValue::from_str(&self.header_value()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Makes `text` safe inside a quoted-string: no quotes, backslashes or
/// control characters (RFC 6750 limits error_description to these anyway).
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_control() || !c.is_ascii() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_name_metadata_scope_and_error() {
        let c = Challenge::new("https://h/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            c.header_value(),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", scope=\"read write\""
        );
        let c = Challenge::new("https://h/m")
            .scope("write")
            .error("invalid_token", "bad \"kid\"");
        assert_eq!(
            c.header_value(),
            "Bearer resource_metadata=\"https://h/m\", scope=\"write\", error=\"invalid_token\", error_description=\"bad 'kid'\""
        );
    }
}
