//! Database URLs printed without their password.

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
