//! Database URLs printed without their password.

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
