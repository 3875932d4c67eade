//! Database URLs printed without their password, and the pool size a URL may carry.

use crate::error::{Error, Result};

/// The URL with its password replaced by `***`, for messages and logs: the password of the
/// user part and a `password` query parameter (libpq's other way of giving it).
///
/// ```
/// assert_eq!(
///     underling::mask_password("postgres://app:secret@db/jobs"),
///     "postgres://app:***@db/jobs"
/// );
/// assert_eq!(
///     underling::mask_password("postgres://app@db/jobs?password=secret&sslmode=require"),
///     "postgres://app@db/jobs?password=***&sslmode=require"
/// );
/// ```
pub fn mask_password(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let mut changed = false;
    if parsed.password().is_some() {
        if parsed.set_password(Some("***")).is_err() {
            return url.to_string();
        }
        changed = true;
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_string()
    }
}

/// The URL without its `pool_size` query parameter, and that parameter's value: the size of
/// the connection pool, a whole number of at least 1 (`postgres://db/app?pool_size=20`,
/// `sqlite://jobs.db?pool_size=4`). When present it wins over the pool size given in code or
/// by a flag. A bad value is an error that names the parameter.
pub(crate) fn take_pool_size(url: &str) -> Result<(String, Option<u32>)> {
    const KEY: &str = "pool_size";
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut size = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((KEY, value)) => {
                let n: u32 = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "the URL's {KEY} must be a whole number of at least 1, got {value:?}"
                    ))
                })?;
                size = Some(n);
            }
            _ if pair == KEY => {
                return Err(Error::InvalidOption(format!(
                    "the URL's {KEY} needs a value, e.g. {KEY}=10"
                )));
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, size))
}

#[cfg(test)]
mod tests {
    use super::take_pool_size;

    #[test]
    fn pool_size_is_taken_out_of_the_url() {
        assert_eq!(
            take_pool_size("postgres://db/app?pool_size=20").unwrap(),
            ("postgres://db/app".to_string(), Some(20))
        );
        assert_eq!(
            take_pool_size("postgres://db/app?sslmode=require&pool_size=3&application_name=x")
                .unwrap(),
            (
                "postgres://db/app?sslmode=require&application_name=x".to_string(),
                Some(3)
            )
        );
        assert_eq!(
            take_pool_size("sqlite::memory:").unwrap(),
            ("sqlite::memory:".to_string(), None)
        );
        assert_eq!(
            take_pool_size("postgres://db/app?sslmode=require").unwrap(),
            ("postgres://db/app?sslmode=require".to_string(), None)
        );
    }

    #[test]
    fn a_bad_pool_size_names_the_parameter() {
        for (url, value) in [
            ("postgres://db/app?pool_size=0", "\"0\""),
            ("postgres://db/app?pool_size=many", "\"many\""),
            ("postgres://db/app?pool_size=-1", "\"-1\""),
        ] {
            assert_eq!(
                take_pool_size(url).unwrap_err().to_string(),
                format!(
                    "invalid option: the URL's pool_size must be a whole number of at least 1, got {value}"
                )
            );
        }
        assert_eq!(
            take_pool_size("postgres://db/app?pool_size")
                .unwrap_err()
                .to_string(),
            "invalid option: the URL's pool_size needs a value, e.g. pool_size=10"
        );
    }
}
