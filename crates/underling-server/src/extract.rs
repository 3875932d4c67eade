//! Extractors that answer bad input with the API's JSON error ([`crate::error::ApiError`])
//! instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, payload_too_large};
use crate::strict::Strict;

/// A JSON body, read as [`parse_body`] reads it (an object wherever the type has a struct)
/// and rejected as a JSON error; also the JSON response type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(Bytes::from_request(request, state).await)?;
        parse_body(&bytes).map(Json)
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/*+json`
/// (parameters such as `charset` allowed), as axum's own `Json` checks.
fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
}

/// The bytes of a body, or the JSON error of a body that could not be read (413 for one over
/// the server's limit).
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request("invalid_body", rejection.body_text())
        }
    })
}

/// Reads a JSON request body as a `T`, strictly: wherever `T` (at any depth) has a struct,
/// the JSON must be an object, not an array of the fields in order (see the `strict` module).
///
/// Errors name the field or position they are about (`scope: ...`, `[1]: ...`): 400
/// `invalid_json` for a body that is not JSON, 422 `invalid_body` for JSON of the wrong shape.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut de))
        .map_err(|e| (e.inner().is_data(), e.to_string()))
        .and_then(|value| {
            de.end()
                .map(|()| value)
                .map_err(|e| (e.is_data(), e.to_string()))
        });
    value.map_err(|(data, detail)| {
        if data {
            ApiError::invalid(
                "invalid_body",
                format!(
                    "Failed to deserialize the JSON body into the target type: {detail}; \
                     see /api/v1/openapi.json for the fields this route takes"
                ),
            )
        } else {
            ApiError::bad_request(
                "invalid_json",
                format!("Failed to parse the request body as JSON: {detail}; send a JSON document"),
            )
        }
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters (`axum::extract::Path`), rejected as a JSON error.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A query string (`axum::extract::Query`), rejected as a JSON error.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);
