//! Bearer tokens: with a token set, every route but `/healthz` and `/readyz` needs
//! `Authorization: Bearer <token>`; a read-only token may only `GET` (and `HEAD`).
//! Tokens are compared in constant time.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The tokens the server accepts. Without a full token, every request has full access (the
/// server then listens on a loopback address only: see [`crate::ServerOptions::check`]).
pub struct Auth {
    token: Option<Vec<u8>>,
    read_only: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Auth")
            .field("token", &self.token.is_some())
            .field("read_only", &self.read_only.is_some())
            .finish()
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    Full,
    /// `GET` and `HEAD` only.
    ReadOnly,
}

impl Auth {
    /// Accepts `token` for everything and `read_only` for reads.
    pub fn new(token: Option<&str>, read_only: Option<&str>) -> Auth {
        Auth {
            token: token.map(|t| t.as_bytes().to_vec()),
            read_only: read_only.map(|t| t.as_bytes().to_vec()),
        }
    }

    /// Whether any token is required.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.read_only.is_some()
    }

    /// What the `Authorization` header (if any) grants, or why it grants nothing.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Access, ApiError> {
        if !self.enabled() {
            return Ok(Access::Full);
        }
        let Some(value) = authorization else {
            return Err(unauthorized(
                "this server needs a token: send the header Authorization: Bearer <token>",
            ));
        };
        let Some(given) = bearer(value) else {
            return Err(unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        // Both compared, whatever the first says, so the time taken does not tell which
        // token was close.
        let full = matches(self.token.as_deref(), given);
        let read = matches(self.read_only.as_deref(), given);
        if full {
            Ok(Access::Full)
        } else if read {
            Ok(Access::ReadOnly)
        } else {
            Err(unauthorized("the token is not valid for this server"))
        }
    }
}

/// The token of a `Bearer <token>` header value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality of a configured token and the one given.
fn matches(expected: Option<&[u8]>, given: &[u8]) -> bool {
    expected.is_some_and(|expected| bool::from(expected.ct_eq(given)))
}

/// 401 with the `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The middleware that enforces [`Auth`] on the routes it wraps.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match state.auth.check(header) {
        Ok(Access::Full) => next.run(request).await,
        Ok(Access::ReadOnly) if matches!(*request.method(), Method::GET | Method::HEAD) => {
            next.run(request).await
        }
        Ok(Access::ReadOnly) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the read-only token may only read (GET): use the full token to change anything",
        )
        .into_response(),
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let auth = Auth::new(Some("s3cret"), Some("look"));
        assert_eq!(auth.check(Some(b"Bearer s3cret")).ok(), Some(Access::Full));
        assert_eq!(auth.check(Some(b"bearer s3cret")).ok(), Some(Access::Full));
        assert_eq!(
            auth.check(Some(b"Bearer look")).ok(),
            Some(Access::ReadOnly)
        );
        assert!(auth.check(Some(b"Bearer s3cre")).is_err());
        assert!(auth.check(Some(b"Bearer s3cret2")).is_err());
        assert!(auth.check(Some(b"Basic s3cret")).is_err());
        assert!(auth.check(Some(b"Bearer ")).is_err());
        assert!(auth.check(None).is_err());
    }

    #[test]
    fn without_tokens_everything_is_allowed() {
        assert_eq!(Auth::new(None, None).check(None).ok(), Some(Access::Full));
    }
}
