//! HTTP workloads: tasks that run in a service somewhere else, by name → URL.
//!
//! A workload's jobs are POSTed to its URL as CloudEvents by the workers that know it (see
//! the `underling-workload` crate, which does the dispatch). This module holds what a workload
//! is ([`WorkloadSpec`]), its checks, the header templates that keep secrets out of files and
//! the database (`${VAR}`, `env:VAR`), and the [`Queue`] methods that store workloads in the
//! database, so that every worker can learn them (`underling workload add`).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use underling::{Queue, WorkloadMode, WorkloadSpec};
//!
//! let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
//! let mut spec = WorkloadSpec::new("image.resize", "http://127.0.0.1:8000/resize");
//! spec.mode = WorkloadMode::Async;
//! spec.headers.insert("Authorization".into(), "Bearer ${RESIZE_TOKEN}".into());
//! queue.add_workload(&spec, false).await?;
//! assert_eq!(queue.workload("image.resize").await?.unwrap().spec, spec);
//! # Ok::<(), underling::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::store;

/// The default time a workload has to answer.
pub const DEFAULT_WORKLOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The default lease of an async workload's job: how long it has to ack, reject or extend.
pub const DEFAULT_WORKLOAD_LEASE: Duration = Duration::from_secs(300);
/// The default number of requests a worker sends to one workload at once.
pub const DEFAULT_WORKLOAD_CONCURRENCY: usize = 10;
/// The default cap on a response body a worker reads (10 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
/// The most requests a worker sends to one workload at once.
pub const MAX_WORKLOAD_CONCURRENCY: usize = 10_000;
/// The longest time a workload may take to answer (one day).
pub const MAX_WORKLOAD_TIMEOUT: Duration = Duration::from_secs(86_400);

/// How a workload answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadMode {
    /// It does the job while the request is open and answers with the result.
    #[default]
    Sync,
    /// It answers `202 Accepted` at once and reports the outcome later, with
    /// `POST /api/v1/jobs/{id}/ack` (or `/reject`, or `/extend` to keep the lease).
    Async,
}

impl fmt::Display for WorkloadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadMode::Sync => "sync",
            WorkloadMode::Async => "async",
        })
    }
}

impl std::str::FromStr for WorkloadMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sync" => Ok(WorkloadMode::Sync),
            "async" => Ok(WorkloadMode::Async),
            other => Err(Error::InvalidOption(format!(
                "unknown workload mode {other:?}: expected sync or async"
            ))),
        }
    }
}

/// A task performed by an HTTP service: its jobs are POSTed to `url` as CloudEvents.
///
/// In TOML (`underling-worker --workloads FILE`) and in the database, durations are written
/// as `humantime` reads them (`"30s"`, `"5m"`), and unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The task name its jobs are enqueued under.
    pub name: String,
    /// Where jobs are POSTed (`http://` or `https://`).
    pub url: String,
    /// Sync or async.
    #[serde(default)]
    pub mode: WorkloadMode,
    /// How long the workload has to answer (sync: with the result; async: with its `202`).
    #[serde(default = "default_timeout", with = "human")]
    pub timeout: Duration,
    /// How many requests one worker process sends to this workload at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Async only: the lease of a job once the workload took it (default 5 minutes); it must
    /// be longer than `timeout`. The workload acks, rejects or extends within it, or the job
    /// fails with `Lease expired` (and is retried where tries are left).
    #[serde(
        default,
        with = "human_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub lease: Option<Duration>,
    /// Request headers, by name. A value may name environment variables of the worker,
    /// `${VAR}` anywhere in it, or the whole value as `env:VAR`: the worker reads them when it
    /// starts, and neither the file nor the database holds the secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The largest response body read (default 10 MiB); a larger one fails the attempt.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// `https://` only: a PEM file of certificate authorities trusted for this workload, on
    /// top of the system's (for a workload whose certificate a private CA signed, or a
    /// self-signed one). The worker reads it when it starts, so the path is the worker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The environment variable of the worker that holds this workload's scoped token
    /// ([`Queue::set_workload_token`]): the worker sends it with every job, in the header
    /// [`WORKLOAD_TOKEN_HEADER`], so that the workload can ack, reject or extend its own jobs
    /// and enqueue follow-up jobs with it. Neither the file nor the database holds the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// The request header that carries a workload's scoped token to it (see
/// [`WorkloadSpec::token_env`]); the workload sends it back as `Authorization: Bearer <token>`.
pub const WORKLOAD_TOKEN_HEADER: &str = "underling-token";

/// The fewest characters a workload token may have.
pub const MIN_WORKLOAD_TOKEN_CHARS: usize = 16;

fn default_timeout() -> Duration {
    DEFAULT_WORKLOAD_TIMEOUT
}
fn default_concurrency() -> usize {
    DEFAULT_WORKLOAD_CONCURRENCY
}
fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

impl WorkloadSpec {
    /// A sync workload with the defaults.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        WorkloadSpec {
            name: name.into(),
            url: url.into(),
            mode: WorkloadMode::Sync,
            timeout: DEFAULT_WORKLOAD_TIMEOUT,
            max_concurrency: DEFAULT_WORKLOAD_CONCURRENCY,
            lease: None,
            headers: BTreeMap::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            ca_file: None,
            token_env: None,
        }
    }

    /// The lease an async workload's job gets once the workload took it.
    pub fn lease_or_default(&self) -> Duration {
        self.lease.unwrap_or(DEFAULT_WORKLOAD_LEASE)
    }

    /// Checks everything but the environment variables the headers name (they are read by
    /// the worker, see [`HeaderTemplate::resolve`]); nothing is read or written.
    pub fn validate(&self) -> Result<()> {
        crate::job::validate_task(&self.name)?;
        let invalid =
            |reason: String| Error::InvalidOption(format!("workload {:?}: {reason}", self.name));
        let url = ::url::Url::parse(&self.url)
            .map_err(|e| invalid(format!("invalid url {:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "invalid url {:?}: the scheme must be http or https",
                self.url
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("invalid url {:?}: no host", self.url)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "the url must not hold credentials: put them in a header (e.g. Authorization = \"Basic ${CREDENTIALS}\")".into(),
            ));
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > MAX_WORKLOAD_TIMEOUT {
            return Err(invalid(format!(
                "the timeout must be from 1ms to 1 day, got {}",
                humantime::format_duration(self.timeout)
            )));
        }
        if self.max_concurrency == 0 || self.max_concurrency > MAX_WORKLOAD_CONCURRENCY {
            return Err(invalid(format!(
                "max_concurrency must be 1 to {MAX_WORKLOAD_CONCURRENCY}, got {}",
                self.max_concurrency
            )));
        }
        match (self.mode, self.lease) {
            (WorkloadMode::Sync, Some(_)) => {
                return Err(invalid(
                    "a lease is for async workloads only (a sync workload's job is held while its request is open)".into(),
                ));
            }
            (WorkloadMode::Async, _) => {
                let lease = self.lease_or_default();
                crate::lease::check_lease(lease).map_err(|e| invalid(e.to_string()))?;
                if lease <= self.timeout {
                    return Err(invalid(format!(
                        "the lease ({}) must be longer than the timeout ({})",
                        humantime::format_duration(lease),
                        humantime::format_duration(self.timeout)
                    )));
                }
            }
            (WorkloadMode::Sync, None) => {}
        }
        if self.max_response_bytes == 0 || self.max_response_bytes > 1 << 30 {
            return Err(invalid(format!(
                "max_response_bytes must be 1 to 1073741824 (1 GiB), got {}",
                self.max_response_bytes
            )));
        }
        if let Some(ca_file) = &self.ca_file {
            if url.scheme() != "https" {
                return Err(invalid(format!(
                    "ca_file is for https:// workloads only, and the url is {:?}",
                    self.url
                )));
            }
            if ca_file.as_os_str().is_empty() {
                return Err(invalid("ca_file must not be empty".into()));
            }
        }
        if let Some(var) = &self.token_env {
            check_var(var).map_err(|reason| invalid(format!("token_env: {reason}")))?;
        }
        for (name, value) in &self.headers {
            check_header_name(name).map_err(&invalid)?;
            HeaderTemplate::parse(value)
                .map_err(|reason| invalid(format!("header {name}: {reason}")))?;
        }
        Ok(())
    }

    /// The headers with their environment variables filled in from `env` (the worker passes
    /// `std::env::var`); fails naming the first variable that is not set, never a value.
    pub fn resolve_headers(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, String)>> {
        self.headers
            .iter()
            .map(|(name, value)| {
                let template = HeaderTemplate::parse(value).map_err(|reason| {
                    Error::InvalidOption(format!(
                        "workload {:?}: header {name}: {reason}",
                        self.name
                    ))
                })?;
                let value = template.resolve(&env).map_err(|var| {
                    Error::InvalidOption(format!(
                        "workload {:?}: header {name} needs the environment variable {var}, which is not set",
                        self.name
                    ))
                })?;
                if value.contains(['\r', '\n', '\0']) {
                    return Err(Error::InvalidOption(format!(
                        "workload {:?}: header {name}: its value holds a line break or NUL once its variables are filled in",
                        self.name
                    )));
                }
                Ok((name.clone(), value))
            })
            .collect()
    }
}

/// Checks a header name: an HTTP token, and none that the worker sets itself.
fn check_header_name(name: &str) -> std::result::Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("invalid header name {name:?}"));
    }
    if name.eq_ignore_ascii_case(WORKLOAD_TOKEN_HEADER) {
        return Err(format!(
            "header {name} is set by the worker from token_env (the workload's scoped token)"
        ));
    }
    if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("content-length") {
        return Err(format!(
            "header {name} is set by the worker (application/cloudevents+json)"
        ));
    }
    Ok(())
}

/// A header value with environment variables in it: `Bearer ${TOKEN}`, or `env:TOKEN` for the
/// whole value. `$$` writes a `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl HeaderTemplate {
    /// Parses a value; says what is wrong with it (an unclosed `${`, a bad variable name, a
    /// line break).
    pub fn parse(value: &str) -> std::result::Result<HeaderTemplate, String> {
        if value.contains(['\r', '\n', '\0']) {
            return Err("a value must not hold a line break or NUL".into());
        }
        if let Some(var) = value.strip_prefix("env:") {
            check_var(var)?;
            return Ok(HeaderTemplate {
                parts: vec![Part::Var(var.to_string())],
            });
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = value;
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after) = after.strip_prefix('$') {
                text.push('$');
                rest = after;
            } else if let Some(after) = after.strip_prefix('{') {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {value:?}"))?;
                let var = &after[..end];
                check_var(var)?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Var(var.to_string()));
                rest = &after[end + 1..];
            } else {
                text.push('$');
                rest = after;
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(HeaderTemplate { parts })
    }

    /// The environment variables it names, in order.
    pub fn vars(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var(v) => Some(v.as_str()),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The value with its variables filled in from `env`, or the name of the first variable
    /// that is not set.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&env(v).ok_or_else(|| v.clone())?),
            }
        }
        Ok(out)
    }
}

/// Checks an environment variable's name: letters, digits and `_`, not starting with a digit.
fn check_var(var: &str) -> std::result::Result<(), String> {
    let mut chars = var.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid environment variable name {var:?} (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok(())
}

/// A workload stored in the database, with when it was added and last replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredWorkload {
    /// The workload.
    #[serde(flatten)]
    pub spec: WorkloadSpec,
    /// When it was first added.
    pub created: DateTime<Utc>,
    /// When it was last written.
    pub updated: DateTime<Utc>,
}

impl Queue {
    /// Stores a workload, so that workers that load stored workloads run its jobs (they read
    /// them when they start). Fails with [`Error::WorkloadExists`] when one of that name is
    /// stored, unless `replace`; a spec that does not pass [`WorkloadSpec::validate`] writes
    /// nothing.
    pub async fn add_workload(&self, spec: &WorkloadSpec, replace: bool) -> Result<()> {
        spec.validate()?;
        let definition = serde_json::to_value(spec)?;
        let written = self
            .store()
            .put_workload(store::PutWorkload {
                name: &spec.name,
                definition: &definition,
                replace,
                now: None,
            })
            .await?;
        if !written {
            return Err(Error::WorkloadExists(spec.name.clone()));
        }
        Ok(())
    }

    /// Every stored workload, by name.
    pub async fn workloads(&self) -> Result<Vec<StoredWorkload>> {
        self.store()
            .workloads()
            .await?
            .into_iter()
            .map(|row| {
                let spec: WorkloadSpec = serde_json::from_value(row.definition)?;
                Ok(StoredWorkload {
                    spec,
                    created: row.created,
                    updated: row.updated,
                })
            })
            .collect()
    }

    /// The stored workload of that name, if any.
    pub async fn workload(&self, name: &str) -> Result<Option<StoredWorkload>> {
        Ok(self
            .workloads()
            .await?
            .into_iter()
            .find(|w| w.spec.name == name))
    }

    /// Removes a stored workload and revokes its token (see [`Queue::set_workload_token`]),
    /// together; [`Error::WorkloadNotFound`] when there is none of that name, and then
    /// nothing changes. Its jobs stay; workers that loaded it run it until they restart.
    pub async fn remove_workload(&self, name: &str) -> Result<()> {
        if !self.store().remove_workload(name).await? {
            return Err(Error::WorkloadNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Sets the token scoped to workload `name` (a stored one, or one that workers read from
    /// a file), replacing the one it had: `underling serve` accepts it for
    /// `POST /api/v1/jobs` and for ack, reject and extend of jobs of task `name`, nothing
    /// else. Only its SHA-256 is stored. A token has at least [`MIN_WORKLOAD_TOKEN_CHARS`]
    /// visible ASCII characters (no spaces).
    pub async fn set_workload_token(&self, name: &str, token: &str) -> Result<()> {
        crate::job::validate_task(name)?;
        check_workload_token(token)?;
        let token_sha256 = workload_token_sha256(token);
        self.store()
            .put_workload_token(store::PutWorkloadToken {
                workload: name,
                token_sha256: &token_sha256,
                now: None,
            })
            .await
    }

    /// Makes a new random token (256 bits, as `uwt_` and 64 hex digits) for workload `name`
    /// and sets it as with [`Queue::set_workload_token`]; returns it (it cannot be read back).
    pub async fn generate_workload_token(&self, name: &str) -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::InvalidOption(format!("cannot read the system's random source: {e}"))
        })?;
        let token = format!("uwt_{}", hex(&bytes));
        self.set_workload_token(name, &token).await?;
        Ok(token)
    }

    /// The workload a token is scoped to, if any (the server's check).
    pub async fn workload_of_token(&self, token: &str) -> Result<Option<String>> {
        self.store()
            .workload_of_token(&workload_token_sha256(token))
            .await
    }

    /// Revokes workload `name`'s token; `false` when it had none.
    pub async fn revoke_workload_token(&self, name: &str) -> Result<bool> {
        self.store().remove_workload_token(name).await
    }

    /// A stream of queue names that got ready jobs (`*`: any queue may have), for a process
    /// that claims with [`Queue::claim_leased`] and wants to look again when jobs arrive
    /// rather than at its next poll; `None` when this store cannot push them (poll then).
    /// Subscribe before the claim that may find nothing, so that no wake-up is lost.
    pub async fn wakeups(&self) -> Result<Option<tokio::sync::broadcast::Receiver<String>>> {
        self.store().subscribe().await
    }
}

/// Checks a workload token: long enough, visible ASCII only.
fn check_workload_token(token: &str) -> Result<()> {
    if token.chars().count() < MIN_WORKLOAD_TOKEN_CHARS
        || !token.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::InvalidOption(format!(
            "a workload token must have at least {MIN_WORKLOAD_TOKEN_CHARS} characters, visible ASCII only (no spaces)"
        )));
    }
    Ok(())
}

/// The SHA-256 of a token, in lowercase hex: what the database keeps.
fn workload_token_sha256(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Durations as `humantime` writes and reads them.
mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

/// Optional durations as `humantime` writes and reads them.
mod human_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|text| {
            humantime::parse_duration(&text)
                .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn a_header_template_fills_in_braced_variables_and_the_env_form() {
        let spec = WorkloadSpec {
            headers: [
                ("Authorization".to_string(), "Bearer ${TOKEN}".to_string()),
                ("X-Key".to_string(), "env:TOKEN".to_string()),
                ("X-Price".to_string(), "$$5 and $x".to_string()),
            ]
            .into(),
            ..WorkloadSpec::new("t", "http://127.0.0.1:1/")
        };
        assert_eq!(
            spec.resolve_headers(env).unwrap(),
            [
                ("Authorization".to_string(), "Bearer s3cret".to_string()),
                ("X-Key".to_string(), "s3cret".to_string()),
                ("X-Price".to_string(), "$5 and $x".to_string()),
            ]
        );
    }

    #[test]
    fn a_header_naming_an_unset_variable_fails_naming_the_variable_only() {
        let spec = WorkloadSpec {
            headers: [("Authorization".to_string(), "Bearer ${NOPE}".to_string())].into(),
            ..WorkloadSpec::new("t", "http://127.0.0.1:1/")
        };
        assert_eq!(
            spec.resolve_headers(env).unwrap_err().to_string(),
            "invalid option: workload \"t\": header Authorization needs the environment variable NOPE, which is not set"
        );
    }

    #[test]
    fn bad_specs_are_refused_with_what_is_wrong() {
        let base = WorkloadSpec::new("t", "http://127.0.0.1:1/");
        let cases = [
            (
                WorkloadSpec {
                    url: "ftp://x/".into(),
                    ..base.clone()
                },
                "invalid url \"ftp://x/\": the scheme must be http or https",
            ),
            (
                WorkloadSpec {
                    url: "not a url".into(),
                    ..base.clone()
                },
                "invalid url \"not a url\": relative URL without a base",
            ),
            (
                WorkloadSpec {
                    max_concurrency: 0,
                    ..base.clone()
                },
                "max_concurrency must be 1 to 10000, got 0",
            ),
            (
                WorkloadSpec {
                    lease: Some(Duration::from_secs(60)),
                    ..base.clone()
                },
                "a lease is for async workloads only (a sync workload's job is held while its request is open)",
            ),
            (
                WorkloadSpec {
                    mode: WorkloadMode::Async,
                    lease: Some(Duration::from_secs(10)),
                    ..base.clone()
                },
                "the lease (10s) must be longer than the timeout (30s)",
            ),
            (
                WorkloadSpec {
                    headers: [("X".to_string(), "${BAD-NAME}".to_string())].into(),
                    ..base.clone()
                },
                "header X: invalid environment variable name \"BAD-NAME\" (letters, digits and _, not starting with a digit)",
            ),
            (
                WorkloadSpec {
                    headers: [("Content-Type".to_string(), "text/plain".to_string())].into(),
                    ..base.clone()
                },
                "header Content-Type is set by the worker (application/cloudevents+json)",
            ),
        ];
        for (spec, reason) in cases {
            assert_eq!(
                spec.validate().unwrap_err().to_string(),
                format!("invalid option: workload \"t\": {reason}")
            );
        }
    }

    #[test]
    fn a_spec_reads_with_defaults_and_writes_its_durations_for_people() {
        let spec: WorkloadSpec = serde_json::from_value(serde_json::json!({
            "name": "t", "url": "http://h/", "mode": "async", "lease": "2m"
        }))
        .unwrap();
        assert_eq!(spec.timeout, DEFAULT_WORKLOAD_TIMEOUT);
        assert_eq!(spec.lease, Some(Duration::from_secs(120)));
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({"name": "t", "url": "http://h/", "mode": "async", "timeout": "30s",
                "max_concurrency": 10, "lease": "2m", "max_response_bytes": 10485760})
        );
    }
}
