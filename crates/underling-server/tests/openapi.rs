//! The OpenAPI document against the server: every documented route is served with its
//! method (and no other method on its path), the route list is the one expected, and the
//! bodies the server answers have exactly the properties of their documented schemas.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use underling::EnqueueOptions;
use underling_testkit::support as kit;

use support::{Kind, TestServer, send};

/// Every route the API serves, as `METHOD /path`.
const ROUTES: [&str; 50] = [
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /api/v1/events",
    "GET /api/v1/events/ws",
    "GET /api/v1/audit",
    "GET /api/v1/openapi.json",
    "GET /api/v1/jobs",
    "POST /api/v1/jobs",
    "POST /api/v1/jobs/batch",
    "GET /api/v1/jobs/{id}",
    "DELETE /api/v1/jobs/{id}",
    "GET /api/v1/jobs/{id}/wait",
    "POST /api/v1/jobs/{id}/retry",
    "POST /api/v1/jobs/{id}/stop",
    "POST /api/v1/jobs/{id}/kill",
    "POST /api/v1/jobs/{id}/notes",
    "POST /api/v1/jobs/retry",
    "POST /api/v1/jobs/remove",
    "POST /api/v1/claims",
    "POST /api/v1/jobs/{id}/ack",
    "POST /api/v1/jobs/{id}/reject",
    "POST /api/v1/jobs/{id}/extend",
    "GET /api/v1/stats",
    "GET /api/v1/history",
    "GET /api/v1/history/minutes",
    "GET /api/v1/tasks",
    "GET /api/v1/queues",
    "GET /api/v1/queues/due",
    "GET /api/v1/queues/throughput",
    "POST /api/v1/queues/{name}/pause",
    "POST /api/v1/queues/{name}/resume",
    "POST /api/v1/queues/{name}/fifo",
    "GET /api/v1/limits",
    "POST /api/v1/limits",
    "DELETE /api/v1/limits/{kind}/{name}",
    "GET /api/v1/workers",
    "GET /api/v1/workers/{id}",
    "POST /api/v1/workers/{id}/commands",
    "POST /api/v1/workers/commands",
    "GET /api/v1/locks",
    "POST /api/v1/locks/{name}",
    "DELETE /api/v1/locks/{name}",
    "GET /api/v1/schedules",
    "POST /api/v1/schedules",
    "GET /api/v1/schedules/{name}",
    "DELETE /api/v1/schedules/{name}",
    "POST /api/v1/schedules/{name}/pause",
    "POST /api/v1/schedules/{name}/resume",
    "POST /api/v1/schedules/{name}/run-now",
];

/// The served document.
async fn document(s: &TestServer) -> Value {
    s.get_ok("/openapi.json").await
}

/// `METHOD /path` for every operation of the document.
fn operations(doc: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// A path with its parameters filled in.
fn concrete(path: &str, job: i64, worker: i64) -> String {
    let id = if path.contains("/workers/") {
        worker
    } else {
        job
    };
    path.replace("{id}", &id.to_string())
        .replace("{name}", "probe")
}

on_both_backends! {
    async fn the_document_is_openapi_3_1_and_lists_exactly_the_expected_routes(s) {
        let doc = document(&s).await;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let expected: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
        assert_eq!(operations(&doc), expected);
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }

    async fn every_documented_route_is_served_with_its_method_and_no_other(s) {
        let doc = document(&s).await;
        let job = kit::enqueue(s.queue(), "t").await;
        let worker = kit::worker(&s.store).await;
        let ops = operations(&doc);
        let paths: BTreeSet<&str> = ops.iter().map(|op| op.split_once(' ').unwrap().1).collect();
        for path in paths {
            for method in [Method::GET, Method::POST, Method::DELETE, Method::PUT] {
                let url = concrete(path, job, worker);
                let url = if url.ends_with("/wait") { format!("{url}?timeout=10ms") } else { url };
                let mut request = s.request(method.clone(), &url);
                if method != Method::GET {
                    request = request.json(&json!({}));
                }
                if method == Method::GET && (url.ends_with("/events") || url.ends_with("/metrics")) {
                    // A stream, and a text exposition: the status and type say it is served.
                    let response = request.send().await.expect("answered");
                    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
                    let kind = response.headers()["content-type"].to_str().unwrap().to_string();
                    assert!(kind.starts_with("text/event-stream") || kind.starts_with("application/openmetrics-text"), "{kind}");
                    continue;
                }
                let (status, body) = send(request).await;
                let documented = ops.contains(&format!("{method} {path}"));
                let code = body["error"]["code"].as_str().unwrap_or("");
                if documented {
                    assert!(code != "no_route" && status != StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {url} is documented but not served: {status} {body}");
                } else {
                    assert_eq!((status, code), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
                        "{method} {url} is not documented but answered {body}");
                }
            }
        }
    }

    async fn every_answered_body_has_exactly_its_documented_properties(s) {
        let doc = document(&s).await;
        let parent = kit::enqueue(s.queue(), "t").await;
        let job = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().parent(parent).queue("q")).await;
        let worker = kit::worker(&s.store).await;
        let done = kit::enqueue(s.queue(), "t").await;
        kit::run_to_finish(&s.store, worker, done).await;
        s.queue().lock("probe", std::time::Duration::from_secs(60), 1).await.unwrap();
        s.queue().add_schedule(underling::Schedule::new("probe", "@daily", "t")).await.unwrap();
        let mut registry = underling::Registry::new();
        registry.register(underling_testkit::tasks::Double).expect("register");
        s.queue().publish_tasks(&registry).await.unwrap();
        let limit = underling::Limit::concurrency(underling::LimitScope::Queue("q".into()), 2);
        s.queue().set_limit(&limit).await.unwrap();
        let mut checked = 0;
        for op in operations(&doc) {
            let (method, path) = op.split_once(' ').unwrap();
            if method != "GET" || path.ends_with("openapi.json") || path.ends_with("/events")
                || path.ends_with("/events/ws") || path == "/metrics" {
                continue;
            }
            let url = concrete(path, job, worker);
            let url = if url.ends_with("/wait") { format!("{url}?timeout=10ms") } else { url };
            let (status, body) = send(s.request(Method::GET, &url)).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            let method_key = method.to_lowercase();
            let schema = &doc["paths"][path][method_key.as_str()]["responses"]["200"]["content"]["application/json"]["schema"];
            check(&doc, &url, &body, schema);
            checked += 1;
        }
        assert_eq!(checked, 19);
    }
}

/// Resolves a `$ref`, and `oneOf` with a null (an optional value).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(options) = schema["oneOf"].as_array()
        && let Some(other) = options.iter().find(|o| o["type"] != "null")
    {
        return resolve(doc, other);
    }
    schema
}

/// Asserts that `value` has exactly the documented properties, recursively.
fn check(doc: &Value, at: &str, value: &Value, schema: &Value) {
    let schema = resolve(doc, schema);
    if let Some(items) = schema.get("items") {
        let values = value
            .as_array()
            .unwrap_or_else(|| panic!("{at}: not an array: {value}"));
        assert!(!values.is_empty(), "{at}: an empty array checks nothing");
        for item in values {
            check(doc, at, item, items);
        }
        return;
    }
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object: {value}"));
    let documented: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    let answered: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(
        answered, documented,
        "{at}: answered vs documented properties"
    );
    for required in schema["required"].as_array().into_iter().flatten() {
        assert!(
            object.contains_key(required.as_str().unwrap()),
            "{at}: {required} is required"
        );
    }
    for (name, property) in properties {
        if !object[name].is_null()
            && (property.get("$ref").is_some()
                || property
                    .get("items")
                    .is_some_and(|i| i.get("$ref").is_some()))
        {
            if object[name].as_array().is_some_and(Vec::is_empty) {
                continue;
            }
            check(doc, &format!("{at}.{name}"), &object[name], property);
        }
    }
}

#[tokio::test]
async fn the_document_is_the_same_as_the_library_builds() {
    let s = TestServer::start(Kind::Sqlite).await.unwrap();
    let served = document(&s).await;
    let built: Value =
        serde_json::from_str(&underling_server::openapi::document().to_json().unwrap()).unwrap();
    assert_eq!(served, built);
    s.stop().await;
}
