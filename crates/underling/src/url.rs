//! Database URLs: which backend they name, and how to print them without a password.

use crate::error::{Error, Result};

/// The database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Postgres,
    Sqlite,
}

/// Tells which backend a URL is for.
pub(crate) fn scheme(url: &str) -> Result<Scheme> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Scheme::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Scheme::Sqlite)
    } else {
        Err(Error::InvalidUrl {
            url: mask_password(url),
            reason: "unknown scheme".into(),
        })
    }
}

/// The URL with its password replaced by `***`, for messages and logs.
///
/// ```
/// assert_eq!(
///     underling::mask_password("postgres://app:secret@db/jobs"),
///     "postgres://app:***@db/jobs"
/// );
/// ```
pub fn mask_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some("***")).is_ok() {
                parsed.to_string()
            } else {
                url.to_string()
            }
        }
        _ => url.to_string(),
    }
}
