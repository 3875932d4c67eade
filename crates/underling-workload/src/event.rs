//! The CloudEvent a workload receives (CloudEvents 1.0, structured JSON mode).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use underling::{Job, Lease};

/// The request's `Content-Type`: a CloudEvent in structured JSON mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The event for one attempt at `job`:
///
/// - `id`: `"<job id>-<attempt>"` (unique per attempt, so a workload can drop duplicates),
///   `source`: `underling://<host>/<queue>`, `type`: the task, `time`: when it was sent,
///   `datacontenttype`: `application/json`, `data`: the job's arguments;
/// - extensions (lowercase letters and digits, as the spec requires): `underlingjobid`,
///   `underlingqueue`, `underlingattempt` (1 for the first try), `underlingnotes` (the notes
///   object as a JSON string: extension values are strings, numbers or booleans), and for an
///   async workload `underlingtoken` (quote it to ack, reject or extend) and
///   `underlingleaseexpires`.
///
/// ```
/// let job: underling::Job = serde_json::from_value(serde_json::json!({
///     "id": 7, "task": "mail.send", "queue": "mail", "args": {"to": "a@example.com"},
///     "state": "active", "priority": 0, "attempts": 3, "retries": 1,
///     "created": "2026-01-01T00:00:00Z", "delayed": "2026-01-01T00:00:00Z",
///     "notes": {"ticket": "OPS-7"}, "parents": [], "children": [], "lax": false
/// })).unwrap();
/// let time = "2026-01-01T00:00:01Z".parse().unwrap();
/// let event = underling_workload::cloud_event(&job, None, "host1", time);
/// assert_eq!(event["id"], "7-2");
/// assert_eq!(event["source"], "underling://host1/mail");
/// assert_eq!(event["underlingnotes"], r#"{"ticket":"OPS-7"}"#);
/// ```
pub fn cloud_event(job: &Job, lease: Option<&Lease>, host: &str, time: DateTime<Utc>) -> Value {
    let attempt = job.retries + 1;
    let mut event = json!({
        "specversion": "1.0",
        "id": format!("{}-{attempt}", job.id),
        "source": format!("underling://{}/{}", encode(host), encode(&job.queue)),
        "type": job.task,
        "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": job.args,
        "underlingjobid": job.id,
        "underlingqueue": job.queue,
        "underlingattempt": attempt,
        "underlingnotes": Value::Object(job.notes.clone()).to_string(),
    });
    if let (Some(lease), Some(map)) = (lease, event.as_object_mut()) {
        map.insert("underlingtoken".into(), json!(lease.token));
        map.insert(
            "underlingleaseexpires".into(),
            json!(lease.expires.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
    }
    event
}

/// Percent-encodes all but the unreserved characters of RFC 3986, so that `source` is a URI
/// reference whatever the host and queue names hold.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_uri_safe_are_percent_encoded_in_the_source() {
        assert_eq!(encode("mail queue/ü"), "mail%20queue%2F%C3%BC");
        assert_eq!(encode("host-1.example"), "host-1.example");
    }
}
