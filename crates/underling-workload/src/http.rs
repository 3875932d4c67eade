//! One request to a workload, and what its answer means for the job ([`Verdict`]).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use underling::WorkloadMode;

/// The most of an error answer's body kept in the job's error.
const ERROR_BODY_CHARS: usize = 500;

/// The longest `Retry-After` obeyed; a longer one is cut to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30 * 86_400);

/// What a workload's answer (or its absence) does to the job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Finished with this result.
    Finish(Value),
    /// An async workload took the job: it stays leased until the workload reports.
    Accepted,
    /// The attempt failed and is retried where tries are left, after `delay` (none: the
    /// default backoff).
    Retry {
        error: String,
        delay: Option<Duration>,
    },
    /// The job failed for good.
    Fail { error: String },
}

/// Sends the request and reads the answer (the request's timeout covers the body too).
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    mode: WorkloadMode,
    timeout: Duration,
    max_body: u64,
) -> Verdict {
    let response = match request.timeout(timeout).send().await {
        Ok(response) => response,
        Err(e) => return transport_failure(&e, timeout),
    };
    let status = response.status();
    if mode == WorkloadMode::Async && status == StatusCode::ACCEPTED {
        return Verdict::Accepted;
    }
    let retry_after = retry_after(response.headers(), chrono::Utc::now());
    let body = match read_capped(response, max_body).await {
        Ok(body) => body,
        Err(Read::TooLarge) => {
            return Verdict::Retry {
                error: format!(
                    "the workload's response is larger than {max_body} bytes (max_response_bytes)"
                ),
                delay: None,
            };
        }
        Err(Read::Failed(e)) => return transport_failure(&e, timeout),
    };
    if status.is_success() {
        return Verdict::Finish(result_of(&body));
    }
    let error = status_error(status, &body);
    if status.is_client_error() {
        match retry_after {
            Some(delay) => Verdict::Retry {
                error,
                delay: Some(delay),
            },
            None => Verdict::Fail { error },
        }
    } else {
        Verdict::Retry {
            error,
            delay: retry_after,
        }
    }
}

/// `workload answered 500 Internal Server Error: <the body's start>`.
fn status_error(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut message = format!("workload answered {status}");
    if !text.is_empty() {
        message.push_str(": ");
        let mut chars = text.chars();
        message.extend(chars.by_ref().take(ERROR_BODY_CHARS));
        if chars.next().is_some() {
            message.push('…');
        }
    }
    message
}

/// A request that got no answer: a timeout, a refused connection, a broken one.
fn transport_failure(e: &reqwest::Error, timeout: Duration) -> Verdict {
    let error = if e.is_timeout() {
        format!(
            "workload timed out after {}",
            humantime::format_duration(timeout)
        )
    } else if let Some(tls) = crate::tls::tls_failure(e) {
        format!(
            "TLS handshake with the workload failed: {tls} (is its certificate signed by a CA in the system's roots or the workload's ca_file?)"
        )
    } else if e.is_connect() {
        format!("could not connect to the workload: {}", root_cause(e))
    } else {
        format!("the request to the workload failed: {}", root_cause(e))
    };
    Verdict::Retry { error, delay: None }
}

/// The innermost cause's message (reqwest's own message names the URL, which may hold
/// something private; the cause says what went wrong).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The job's result: the body as JSON when it parses, else as a string (`null` when empty).
fn result_of(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

enum Read {
    TooLarge,
    Failed(reqwest::Error),
}

/// The body, unless it is larger than `max` bytes (stops reading as soon as it is).
async fn read_capped(mut response: reqwest::Response, max: u64) -> Result<Vec<u8>, Read> {
    if response.content_length().is_some_and(|len| len > max) {
        return Err(Read::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Read::Failed)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(Read::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]; a date in the past
/// is no delay.
pub(crate) fn retry_after(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            retry_after(&with_retry_after("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&with_retry_after("Thu, 01 Jan 2026 00:01:30 GMT"), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after(&with_retry_after("Wed, 31 Dec 2025 00:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
        assert_eq!(
            retry_after(&with_retry_after("99999999999"), now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn a_body_is_json_when_it_parses_else_a_string() {
        assert_eq!(result_of(br#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(result_of(b"done"), serde_json::json!("done"));
        assert_eq!(result_of(b""), Value::Null);
    }

    #[test]
    fn an_error_keeps_the_start_of_the_body() {
        assert_eq!(
            status_error(StatusCode::INTERNAL_SERVER_ERROR, b" boom \n"),
            "workload answered 500 Internal Server Error: boom"
        );
        assert_eq!(
            status_error(StatusCode::NOT_FOUND, b""),
            "workload answered 404 Not Found"
        );
        let long = "x".repeat(600);
        assert_eq!(
            status_error(StatusCode::BAD_REQUEST, long.as_bytes()),
            format!("workload answered 400 Bad Request: {}…", "x".repeat(500))
        );
    }
}
