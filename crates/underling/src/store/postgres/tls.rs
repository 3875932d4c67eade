//! TLS settings of a PostgreSQL URL, read as libpq reads them and checked before connecting,
//! and the errors of a TLS connection turned into [`Error`]s that say what to change.
//!
//! sqlx's `PgConnectOptions::from_str` reads `sslmode`, `sslrootcert`, `sslcert` and `sslkey`
//! (and the `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` variables), but:
//! - an unknown `sslmode` is a bare "unknown value for `ssl_mode`" (and an unknown
//!   `PGSSLMODE` is silently ignored);
//! - `require` with a root certificate does not verify the server (libpq then behaves as
//!   `verify-ca`);
//! - `allow` connects like `disable` (libpq falls back to TLS when the server refuses);
//! - a missing certificate file is "No such file or directory" without its name, and a root
//!   certificate file without any PEM certificate in it is silently ignored;
//! - other `ssl*` parameters (`sslcrl`, `sslpassword`, ...) are ignored with a log line.
//!
//! This module closes those gaps.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::error::{Error, Result};

/// The `ssl*` URL parameters this driver honours (libpq's names; sqlx's aliases in
/// [`alias`]).
const SUPPORTED: &str = "sslmode, sslrootcert, sslcert and sslkey";

/// The sslmode values, in libpq's order.
const MODES: &str = "disable, allow, prefer, require, verify-ca or verify-full";

/// The parameter a URL key stands for, if it is one of the TLS parameters sqlx reads.
fn alias(key: &str) -> Option<Param> {
    match key {
        "sslmode" | "ssl-mode" => Some(Param::Mode),
        "sslrootcert" | "ssl-root-cert" | "ssl-ca" => Some(Param::RootCert),
        "sslcert" | "ssl-cert" => Some(Param::Cert),
        "sslkey" | "ssl-key" => Some(Param::Key),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Param {
    Mode,
    RootCert,
    Cert,
    Key,
}

impl Param {
    /// The environment variable libpq (and sqlx) read when the URL does not give it.
    fn env(self) -> &'static str {
        match self {
            Param::Mode => "PGSSLMODE",
            Param::RootCert => "PGSSLROOTCERT",
            Param::Cert => "PGSSLCERT",
            Param::Key => "PGSSLKEY",
        }
    }
}

/// One setting and where it came from (the URL key as written, or the variable).
struct Setting {
    source: String,
    value: String,
}

/// The TLS settings of one URL, after the checks.
pub(super) struct Tls {
    /// The mode connections use (after `require` + root certificate became `verify-ca`).
    pub(super) mode: PgSslMode,
    /// The root certificate file, for messages.
    root_cert: Option<Setting>,
}

impl Tls {
    /// libpq's `allow` after the server refused a connection without TLS: TLS, verified
    /// against the root certificate if one was given.
    pub(super) fn fall_back_to_tls(&mut self) -> PgSslMode {
        self.mode = if self.root_cert.is_some() {
            PgSslMode::VerifyCa
        } else {
            PgSslMode::Require
        };
        self.mode
    }
}

impl Tls {
    /// libpq's name of the mode in effect.
    pub(super) fn mode_name(&self) -> &'static str {
        mode_name(self.mode)
    }
}

/// libpq's name of a mode.
pub(super) fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Parses `url` into connect options, checking its TLS settings first: the mode must be one
/// of libpq's, every certificate or key file it names must be a readable PEM file, and no
/// unsupported `ssl*` parameter may be given. `masked` is the URL for messages.
pub(super) fn options_from_url(url: &str, masked: &str) -> Result<(PgConnectOptions, Tls)> {
    let invalid_url = |reason: String| Error::InvalidUrl {
        url: masked.to_string(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid_url(e.to_string()))?;
    let param_error = |parameter: &str, reason: String| Error::InvalidUrlParameter {
        url: masked.to_string(),
        parameter: parameter.to_string(),
        reason,
    };

    // The URL's settings (the last of repeated keys wins, as in sqlx), then the environment.
    let mut settings: [Option<Setting>; 4] = [None, None, None, None];
    let slot = |p: Param| p as usize;
    for (key, value) in parsed.query_pairs() {
        match alias(&key) {
            Some(param) => {
                settings[slot(param)] = Some(Setting {
                    source: key.into_owned(),
                    value: value.into_owned(),
                });
            }
            None if key.starts_with("ssl") || key == "requiressl" => {
                return Err(param_error(
                    &key,
                    format!(
                        "this parameter is not supported by underling's PostgreSQL driver (it supports {SUPPORTED}); remove it"
                    ),
                ));
            }
            None => {}
        }
    }
    for param in [Param::Mode, Param::RootCert, Param::Cert, Param::Key] {
        if settings[slot(param)].is_none()
            && let Ok(value) = std::env::var(param.env())
        {
            settings[slot(param)] = Some(Setting {
                source: param.env().to_string(),
                value,
            });
        }
    }
    let [mode, root_cert, cert, key] = settings;

    let mut mode = match &mode {
        None => PgSslMode::Prefer,
        Some(setting) => parse_mode(&setting.value).ok_or_else(|| {
            param_error(
                &setting.source,
                format!("{:?} is not an sslmode; use {MODES}", setting.value),
            )
        })?,
    };

    match (&cert, &key) {
        (Some(only), None) | (None, Some(only)) => {
            let missing = if only.source.contains("key") || only.source == "PGSSLKEY" {
                "sslcert"
            } else {
                "sslkey"
            };
            return Err(param_error(
                &only.source,
                format!(
                    "a client certificate needs both sslcert and sslkey; add {missing} (the {} file)",
                    if missing == "sslcert" {
                        "certificate"
                    } else {
                        "private key"
                    }
                ),
            ));
        }
        _ => {}
    }

    if !matches!(mode, PgSslMode::Disable) {
        for (setting, what) in [
            (&root_cert, "CERTIFICATE"),
            (&cert, "CERTIFICATE"),
            (&key, "PRIVATE KEY"),
        ] {
            if let Some(setting) = setting {
                check_pem_file(setting, what, masked)?;
            }
        }
    }

    // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as
    // that of verify-ca". sqlx's `require` never verifies.
    if matches!(mode, PgSslMode::Require) && root_cert.is_some() {
        mode = PgSslMode::VerifyCa;
    }

    let options = PgConnectOptions::from_str(url)
        .map_err(|e| invalid_url(e.to_string()))?
        .ssl_mode(mode);
    Ok((options, Tls { mode, root_cert }))
}

/// libpq's sslmode names (sqlx also accepts other letter cases).
fn parse_mode(value: &str) -> Option<PgSslMode> {
    Some(match value {
        "disable" => PgSslMode::Disable,
        "allow" => PgSslMode::Allow,
        "prefer" => PgSslMode::Prefer,
        "require" => PgSslMode::Require,
        "verify-ca" => PgSslMode::VerifyCa,
        "verify-full" => PgSslMode::VerifyFull,
        _ => return None,
    })
}

/// A file named by a setting must be readable and hold a PEM block of this kind. A variable
/// holding PEM text itself (sqlx accepts that) is not a file.
fn check_pem_file(setting: &Setting, what: &str, masked: &str) -> Result<()> {
    let value = setting.value.trim();
    if setting.source.starts_with("PG") && value.starts_with("-----BEGIN") {
        return Ok(());
    }
    let path = Path::new(&setting.value);
    let file_error = |reason: String| Error::TlsFile {
        url: masked.to_string(),
        parameter: setting.source.clone(),
        path: PathBuf::from(&setting.value),
        reason,
    };
    if setting.value.is_empty() {
        return Err(file_error("is empty".to_string()));
    }
    let data = std::fs::read(path).map_err(|e| {
        file_error(match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "cannot be read by this process (permission denied)".to_string()
            }
            _ => format!("cannot be read ({e})"),
        })
    })?;
    let text = String::from_utf8_lossy(&data);
    let found = text.lines().any(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .is_some_and(|rest| rest.trim_end_matches('-').ends_with(what))
    });
    if found {
        Ok(())
    } else {
        Err(file_error(format!(
            "holds no PEM {} (a \"-----BEGIN {what}-----\" block)",
            what.to_lowercase()
        )))
    }
}

/// The error for a connection that failed, saying what to change when TLS is why.
pub(super) fn connect_error(source: sqlx::Error, masked: &str, tls: &Tls) -> Error {
    let url = masked.to_string();
    if let Some(cert_error) = certificate_error(&source) {
        return Error::TlsCertificate {
            url,
            reason: certificate_reason(cert_error, tls),
        };
    }
    if let sqlx::Error::Tls(inner) = &source
        && inner.to_string().contains("server does not support TLS")
    {
        return Error::TlsUnsupported {
            url,
            sslmode: tls.mode_name().to_string(),
        };
    }
    if let Some(server_message) = refused_without_tls(&source) {
        return Error::TlsRequired {
            url,
            sslmode: tls.mode_name().to_string(),
            server_message,
        };
    }
    Error::Connect { url, source }
}

/// The server's message when it refused a connection because it was not encrypted
/// (`pg_hba.conf` has only `hostssl` lines for this client).
pub(super) fn refused_without_tls(error: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let message = db.message();
    (db.code().as_deref() == Some("28000") && message.contains("no encryption"))
        .then(|| message.to_string())
}

/// The certificate problem rustls reported, wherever in the error chain it is (sqlx wraps
/// handshake errors in `std::io::Error`, whose `source()` skips the wrapped error).
fn certificate_error(error: &sqlx::Error) -> Option<&rustls::CertificateError> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        let candidate = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static))
            .unwrap_or(current);
        if let Some(rustls::Error::InvalidCertificate(cert)) =
            candidate.downcast_ref::<rustls::Error>()
        {
            return Some(cert);
        }
        next = current.source();
    }
    None
}

/// What a certificate error means for the person who wrote the URL.
fn certificate_reason(error: &rustls::CertificateError, tls: &Tls) -> String {
    use rustls::CertificateError as E;
    let mode = tls.mode_name();
    match error {
        E::UnknownIssuer => match &tls.root_cert {
            Some(root) => format!(
                "it is not signed by the certificate authority in {}={} (sslmode={mode}); give the CA that issued the server's certificate",
                root.source,
                // A variable may hold the PEM text itself.
                if root.value.trim_start().starts_with("-----BEGIN") {
                    "(PEM text)"
                } else {
                    root.value.as_str()
                }
            ),
            None => format!(
                "it is not signed by a publicly trusted certificate authority (sslmode={mode}); give your server's CA with sslrootcert=/path/to/ca.crt"
            ),
        },
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "{error} (sslmode=verify-full checks the host name: connect with a host name the certificate lists, or use sslmode=verify-ca)"
        ),
        other => format!("{other} (sslmode={mode})"),
    }
}
