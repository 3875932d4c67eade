//! The web UI's server side over HTTP: its pages and their security headers, the login that
//! opens a session cookie, and what that cookie may do (reads; changes only with the CSRF
//! header from the UI's own origin; nothing beyond its token's access). The pages themselves
//! are driven in a real browser by `workers/underling-worker/tests/webui.rs`.

mod support;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use underling_server::ServerOptions;

use support::{Kind, TestServer, assert_error};

const TOKEN: &str = "full-token-0123456789";
const READ_ONLY: &str = "read-only-token-9876543210";

async fn with_tokens() -> TestServer {
    TestServer::start_with(
        Kind::Sqlite,
        ServerOptions {
            token: Some(TOKEN.into()),
            read_only_token: Some(READ_ONLY.into()),
            ..ServerOptions::default()
        },
    )
    .await
    .expect("SQLite always opens")
}

/// A client that does not follow redirects (the login answers one) and keeps no cookies.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// Posts the login form with `token`.
async fn login(s: &TestServer, token: &str, origin: Option<&str>) -> Response {
    let mut request = client()
        .post(format!("{}/ui/login", s.url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    request.send().await.expect("answered")
}

/// Logs in with `token`; the `Cookie` header value of the session.
async fn session(s: &TestServer, token: &str) -> String {
    let response = login(s, token, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE].to_str().expect("ascii");
    cookie.split(';').next().expect("a pair").to_string()
}

/// The status and JSON of a request.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    support::send(request).await
}

async fn paused(s: &TestServer, queue: &str) -> bool {
    s.queue()
        .queues()
        .await
        .expect("queues")
        .iter()
        .any(|q| q.name == queue && q.paused)
}

#[tokio::test]
async fn the_pages_are_served_with_a_content_security_policy_that_forbids_inline_script() {
    let s = with_tokens().await;
    let response = client().get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(
        headers["content-security-policy"],
        underling_server::ui::CONTENT_SECURITY_POLICY
    );
    assert!(
        underling_server::ui::CONTENT_SECURITY_POLICY.contains("script-src 'self';"),
        "no 'unsafe-inline'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"<script src="/ui/app.js" defer></script>"#));
    let js = client()
        .get(format!("{}/ui/app.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    let js = js.text().await.unwrap();
    for sink in [
        ".innerHTML",
        ".outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_valid_token_opens_a_session_in_an_http_only_same_site_strict_cookie() {
    let s = with_tokens().await;
    let response = login(&s, TOKEN, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    let (pair, attributes) = cookie.split_once("; ").expect("attributes");
    let id = pair.strip_prefix("underling_session=").expect("the name");
    assert_eq!(id.len(), 64, "{cookie}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{cookie}");
    assert!(!cookie.contains(TOKEN), "the token never goes back");
    assert_eq!(
        attributes,
        "HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_token_opens_no_session_and_goes_back_to_the_form() {
    let s = with_tokens().await;
    for token in ["wrong", "", &TOKEN[..TOKEN.len() - 1]] {
        let response = login(&s, token, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/?login=failed");
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    s.stop().await;
}

#[tokio::test]
async fn the_login_form_of_another_site_is_refused() {
    let s = with_tokens().await;
    let response = login(&s, TOKEN, Some("http://evil.example")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());
    s.stop().await;
}

#[tokio::test]
async fn the_session_cookie_authenticates_reads_and_a_made_up_one_does_not() {
    let s = with_tokens().await;
    let cookie = session(&s, TOKEN).await;
    let stats = format!("{}/api/v1/stats", s.url);
    let (status, body) = answer(client().get(&stats).header(COOKIE, &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["inactive_jobs"], 0);
    let made_up = format!("underling_session={}", "0".repeat(64));
    let (status, body) = answer(client().get(&stats).header(COOKIE, made_up)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn a_change_by_cookie_without_the_csrf_header_is_refused_and_changes_nothing() {
    let s = with_tokens().await;
    let cookie = session(&s, TOKEN).await;
    let (status, body) = answer(
        client()
            .post(format!("{}/api/v1/queues/mail/pause", s.url))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "csrf");
    assert!(!paused(&s, "mail").await);
    s.stop().await;
}

#[tokio::test]
async fn a_change_by_cookie_from_another_origin_is_refused_and_changes_nothing() {
    let s = with_tokens().await;
    let cookie = session(&s, TOKEN).await;
    let (status, body) = answer(
        client()
            .post(format!("{}/api/v1/queues/mail/pause", s.url))
            .header(COOKIE, &cookie)
            .header("x-underling-csrf", "1")
            .header(ORIGIN, "http://evil.example"),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "cross_site");
    assert!(!paused(&s, "mail").await);
    s.stop().await;
}

#[tokio::test]
async fn a_change_by_cookie_with_the_csrf_header_from_the_ui_is_done() {
    let s = with_tokens().await;
    let cookie = session(&s, TOKEN).await;
    let (status, body) = answer(
        client()
            .post(format!("{}/api/v1/queues/mail/pause", s.url))
            .header(COOKIE, &cookie)
            .header("x-underling-csrf", "1")
            .header(ORIGIN, &s.url),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(paused(&s, "mail").await);
    s.stop().await;
}

#[tokio::test]
async fn a_read_only_session_may_read_but_not_change_anything() {
    let s = with_tokens().await;
    let cookie = session(&s, READ_ONLY).await;
    let (status, body) = answer(
        client()
            .get(format!("{}/ui/session", s.url))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"token_required": true, "access": "read_only"})
    );
    let (status, body) = answer(
        client()
            .post(format!("{}/api/v1/queues/mail/pause", s.url))
            .header(COOKIE, &cookie)
            .header("x-underling-csrf", "1"),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(!paused(&s, "mail").await);
    s.stop().await;
}

#[tokio::test]
async fn logging_out_ends_the_session_and_clears_the_cookie() {
    let s = with_tokens().await;
    let cookie = session(&s, TOKEN).await;
    let without_header = client()
        .post(format!("{}/ui/logout", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(without_header.status(), StatusCode::FORBIDDEN);
    let response = client()
        .post(format!("{}/ui/logout", s.url))
        .header(COOKIE, &cookie)
        .header("x-underling-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()[SET_COOKIE],
        "underling_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    );
    let (status, body) = answer(
        client()
            .get(format!("{}/api/v1/stats", s.url))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn without_a_token_the_ui_needs_no_login() {
    let s = TestServer::start(Kind::Sqlite).await.expect("SQLite");
    let (status, body) = answer(client().get(format!("{}/ui/session", s.url))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"token_required": false, "access": "full"})
    );
    s.stop().await;
}

#[tokio::test]
async fn without_a_token_a_change_from_another_origins_page_is_refused() {
    let s = TestServer::start(Kind::Sqlite).await.expect("SQLite");
    let pause = format!("{}/api/v1/queues/mail/pause", s.url);
    let (status, body) = answer(client().post(&pause).header(ORIGIN, "http://evil.example")).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "cross_site");
    assert!(!paused(&s, "mail").await);
    // Scripts and the UI itself (no Origin, or this server's) still may.
    let (status, body) = answer(client().post(&pause).header(ORIGIN, &s.url)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(paused(&s, "mail").await);
    s.stop().await;
}
