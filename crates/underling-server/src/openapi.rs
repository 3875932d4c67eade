//! The OpenAPI 3.1 document, served at `/api/v1/openapi.json`, built from the same route
//! registrations as the router (utoipa-axum), so that the two cannot drift apart.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

/// The document's fixed parts: title, tags, security and the error schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "underling",
        description = "The HTTP JSON API of underling, a PostgreSQL/SQLite job queue: everything the `underling` CLI does. Errors are `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`.",
    ),
    tags(
        (name = "jobs", description = "Enqueue, inspect, wait for, retry, stop and remove jobs"),
        (name = "leases", description = "Pull workers: claim jobs with a lease, then ack, reject or extend it"),
        (name = "queues", description = "List, pause and resume queues"),
        (name = "limits", description = "Exact concurrency and rate limits per queue, task or key"),
        (name = "workers", description = "Workers and their remote commands"),
        (name = "locks", description = "Named locks"),
        (name = "schedules", description = "Schedules (cron): jobs enqueued at the ticks of cron expressions, each tick once"),
        (name = "stats", description = "Counts, history and tasks"),
        (name = "health", description = "Liveness and readiness probes (no token)"),
        (name = "meta", description = "This document"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer token scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document: [`ApiDoc`] and every route the router serves (built from the same
/// registrations).
pub fn document() -> utoipa::openapi::OpenApi {
    crate::documented_routes().into_openapi()
}

/// The document as JSON, built once.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the OpenAPI document does not serialize");
            r#"{"error":{"code":"internal","message":"the OpenAPI document could not be built"}}"#
                .to_string()
        })
    })
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}
