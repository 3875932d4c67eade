//! The PostgreSQL server with TLS that the TLS tests connect to (made by
//! `scripts/ensure-tls-postgres.sh`).
//!
//! - `UNDERLING_TLS_TEST_URL` (default `postgres://postgres@localhost:5433/test`): the server,
//!   without any `ssl*` parameter; database `tls_only` on it accepts TLS connections only.
//! - `UNDERLING_TLS_CA` (default `/var/lib/underling-tls/ca.crt`): the CA that signed its
//!   certificate (which names `localhost`, `127.0.0.1` and `::1`; the server also listens on
//!   `127.0.0.2`, which it does not name).
//! - `UNDERLING_TLS_WRONG_CA` (default `/var/lib/underling-tls/wrong-ca.crt`): a CA that
//!   signed nothing.
//!
//! When the server cannot be reached, [`tls_server`] panics under CI (`CI` set) and returns
//! `None` elsewhere, with a loud `!!!! SKIPPING` message.

use underling::{ConnectOptions, Queue};

/// The TLS test server's URL, without `ssl*` parameters.
pub fn tls_url() -> String {
    std::env::var("UNDERLING_TLS_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5433/test".to_string())
}

/// The CA that signed the TLS test server's certificate.
pub fn tls_ca() -> String {
    std::env::var("UNDERLING_TLS_CA").unwrap_or_else(|_| "/var/lib/underling-tls/ca.crt".into())
}

/// A CA that did not sign the TLS test server's certificate.
pub fn tls_wrong_ca() -> String {
    std::env::var("UNDERLING_TLS_WRONG_CA")
        .unwrap_or_else(|_| "/var/lib/underling-tls/wrong-ca.crt".into())
}

/// The TLS test server, reached and checked.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// [`tls_url`].
    pub url: String,
    /// [`tls_ca`].
    pub ca: String,
    /// [`tls_wrong_ca`].
    pub wrong_ca: String,
}

impl TlsServer {
    /// The server's URL with `query` (`sslmode=…&…`) appended.
    pub fn with(&self, query: &str) -> String {
        with_query(&self.url, query)
    }

    /// The URL with its host (and port) replaced, e.g. by `127.0.0.2:5433`.
    pub fn on_host(&self, host: &str, query: &str) -> String {
        let mut url = url::Url::parse(&self.url).expect("UNDERLING_TLS_TEST_URL is a URL");
        url.set_host(Some(host)).expect("a host");
        with_query(url.as_str(), query)
    }

    /// The URL of database `db` on the same server.
    pub fn database(&self, db: &str, query: &str) -> String {
        let mut url = url::Url::parse(&self.url).expect("UNDERLING_TLS_TEST_URL is a URL");
        url.set_path(db);
        with_query(url.as_str(), query)
    }
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// The TLS test server when it answers a `sslmode=verify-full` connection with [`tls_ca`];
/// `None` (with a loud `!!!! SKIPPING` message) when it does not, outside CI; under CI (`CI`
/// set) it panics.
pub async fn tls_server() -> Option<TlsServer> {
    let server = TlsServer {
        url: tls_url(),
        ca: tls_ca(),
        wrong_ca: tls_wrong_ca(),
    };
    let probe = server.with(&format!("sslmode=verify-full&sslrootcert={}", server.ca));
    // Any answer but a connection error means the server is there (an unmigrated database
    // is `NotMigrated`).
    match Queue::connect_with(ConnectOptions::new(&probe).schema(crate::unique_schema())).await {
        Err(e @ (underling::Error::Connect { .. } | underling::Error::TlsFile { .. })) => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL with TLS is required in CI but {probe} failed: {e} (run scripts/ensure-tls-postgres.sh)"
                );
            }
            eprintln!(
                "\n!!!! SKIPPING this TLS test: {probe} is not reachable ({e}).\n\
                 !!!! Run `bash scripts/ensure-tls-postgres.sh` (as root) or set UNDERLING_TLS_TEST_URL and UNDERLING_TLS_CA.\n"
            );
            None
        }
        _ => Some(server),
    }
}
