//! Sessions of the web UI: a login with a valid token gets a random session id, kept in an
//! `HttpOnly`, `SameSite=Strict` cookie, that stands for the token's access until it expires
//! or the operator logs out. The token itself never goes back to the browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Access;

/// The name of the session cookie.
pub const COOKIE: &str = "underling_session";

/// How long a session lasts after its login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions kept at once: only a valid token opens one, but a script that logs in
/// in a loop must not grow the server's memory without bound (the oldest go first).
pub const MAX_SESSIONS: usize = 10_000;

/// Why no session could be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The operating system gave no random bytes.
    #[error("no random bytes for a session id: {0}")]
    Random(String),
}

/// The live sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    access: Access,
    expires: Instant,
}

impl Sessions {
    /// Opens a session with `access`; its id, for the cookie.
    pub fn open(&self, access: Access) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            id.clone(),
            Session {
                access,
                expires: now + SESSION_LIFETIME,
            },
        );
        Ok(id)
    }

    /// The access of a live session, or `None` (unknown or expired).
    pub fn access(&self, id: &str) -> Option<Access> {
        let now = Instant::now();
        let mut live = self.lock();
        match live.get(id) {
            Some(session) if session.expires > now => Some(session.access),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session (a logout); whether it was live.
    pub fn close(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while the map was held cannot leave it half-changed (every change is one
        // call), so a poisoned lock is still usable.
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session id in a `Cookie` header value, if any.
pub fn from_cookie_header(value: &str) -> Option<&str> {
    value.split(';').find_map(|pair| {
        let (name, id) = pair.trim().split_once('=')?;
        (name == COOKIE && !id.is_empty()).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_its_access_until_it_is_closed() {
        let sessions = Sessions::default();
        let id = sessions.open(Access::ReadOnly).expect("random bytes");
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.access(&id), Some(Access::ReadOnly));
        assert!(sessions.close(&id));
        assert_eq!(sessions.access(&id), None);
        assert!(!sessions.close(&id));
    }

    #[test]
    fn the_session_id_is_found_among_other_cookies() {
        assert_eq!(
            from_cookie_header("a=1; underling_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(from_cookie_header("underling_session="), None);
        assert_eq!(from_cookie_header("xunderling_session=abc"), None);
    }
}
