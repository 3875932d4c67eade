//! TLS for `https://` workloads: rustls on the `ring` provider, trusting the system's roots
//! (through `rustls-platform-verifier`, as reqwest does by default) plus a workload's own
//! `ca_file`.

use std::path::Path;
#[cfg(feature = "https")]
use std::sync::Arc;

#[cfg(feature = "https")]
use rustls_pki_types::CertificateDer;
#[cfg(feature = "https")]
use rustls_pki_types::pem::PemObject;

use crate::error::WorkloadError;

/// Whether this build reaches `https://` workloads (the `https` feature).
pub(crate) const HTTPS: bool = cfg!(feature = "https");

/// Without the `https` feature: a plain HTTP client (no redirects followed, this crate's user
/// agent); the dispatcher refuses `https://` workloads before it gets here.
#[cfg(not(feature = "https"))]
pub(crate) fn client(
    _workload: &str,
    _ca_file: Option<&Path>,
) -> Result<reqwest::Client, WorkloadError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("underling/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WorkloadError::Client(e.to_string()))
}

/// Without the `https` feature no request is made over TLS.
#[cfg(not(feature = "https"))]
pub(crate) fn tls_failure(_e: &(dyn std::error::Error + 'static)) -> Option<String> {
    None
}

#[cfg(feature = "https")]
/// An HTTP client for workloads: no redirects followed, this crate's user agent, and TLS that
/// trusts the system's roots and those of `ca_file` (a PEM file of one or more certificates).
pub(crate) fn client(
    workload: &str,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, WorkloadError> {
    let extra = match ca_file {
        Some(path) => read_ca_file(workload, path)?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone()).map_err(
            |e| WorkloadError::Client(format!("cannot load the system's certificate roots: {e}")),
        )?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WorkloadError::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("underling/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| WorkloadError::Client(e.to_string()))
}

#[cfg(feature = "https")]
/// The certificates of a PEM file; fails on a file that cannot be read or holds none.
fn read_ca_file(
    workload: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, WorkloadError> {
    let fail = |reason: String| WorkloadError::CaFile {
        workload: workload.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM file of certificates: {e}")))?;
    if certs.is_empty() {
        return Err(fail(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

#[cfg(feature = "https")]
/// The TLS error behind a failed request, if TLS is what failed. rustls's own error travels
/// inside an `io::Error` (maybe wrapped in another), whose `source()` skips it: look inside.
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(error) = cause {
        let mut inner: &(dyn std::error::Error + 'static) = error;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        cause = error.source();
    }
    None
}

#[cfg(all(test, feature = "https"))]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_the_workload_and_file() {
        let dir = std::env::temp_dir().join(format!("underling-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client("w", Some(&path)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "workload \"w\": cannot use ca_file {}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            )
        );
        let missing = dir.join("missing.pem");
        let err = client("w", Some(&missing)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "workload \"w\": cannot use ca_file {}: ",
                missing.display()
            )),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_client_without_a_ca_file_builds_on_the_system_roots() {
        assert!(client("w", None).is_ok());
    }
}
