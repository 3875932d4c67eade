//! `https://` workloads: a local server whose certificate a CA made by the test signed. With
//! the CA as the workload's `ca_file` the job finishes; without it the attempt fails with the
//! TLS error in the job's result and is retried per its attempts. On SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use underling::{EnqueueOptions, JobState, Queue, WorkloadSpec};
use underling_testkit::TestStore;
use underling_testkit::support as kit;
use underling_workload::{DispatchControl, DispatchOptions, DispatchSummary, Dispatcher};

/// A CA made for the test, and an https server on 127.0.0.1 whose certificate (for
/// `localhost` and `127.0.0.1`) it signed.
struct Https {
    url: String,
    ca_pem: String,
}

/// A TLS listener for `axum::serve`: accepts, then shakes hands (a failed handshake, as
/// when the client does not trust the certificate, drops that connection only).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl Https {
    /// Answers every POST with `{"echo": <the event's data>}`.
    async fn start() -> Https {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "underling test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap()
                .signed_by(&server_key, &ca)
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(|body: axum::body::Bytes| async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                axum::Json(json!({"echo": event["data"]}))
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Https {
            url: format!("https://127.0.0.1:{port}/"),
            ca_pem: ca.pem(),
        }
    }

    /// Writes the CA's certificate to a PEM file of its own.
    fn write_ca_file(&self) -> tempfile_path::Path {
        tempfile_path::Path::new("ca.pem", &self.ca_pem)
    }
}

/// A file under the system's temporary directory, removed when dropped.
mod tempfile_path {
    pub struct Path(std::path::PathBuf);

    impl Path {
        pub fn new(name: &str, contents: &str) -> Path {
            let dir = std::env::temp_dir().join(format!(
                "underling-https-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap();
            Path(path)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Path {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    }
}

struct Running {
    control: DispatchControl,
    task: tokio::task::JoinHandle<Result<DispatchSummary, underling_workload::WorkloadError>>,
}

fn start(queue: &Queue, spec: WorkloadSpec) -> Running {
    let options = DispatchOptions {
        poll_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
        host: "test-host".into(),
        ..DispatchOptions::default()
    };
    let dispatcher = Dispatcher::new(queue.clone(), vec![spec], options).unwrap();
    Running {
        control: dispatcher.control(),
        task: tokio::spawn(dispatcher.run()),
    }
}

async fn enqueue(queue: &Queue, args: Value, attempts: i32) -> i64 {
    queue
        .enqueue("tls.echo", args, EnqueueOptions::new().attempts(attempts))
        .await
        .unwrap()
}

macro_rules! on_both_backends {
    ($(async fn $name:ident($t:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $t: TestStore = underling_testkit::sqlite().await;
                    $body
                    $t.cleanup().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($t) = underling_testkit::postgres().await else { return };
                    $body
                    $t.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends! {
    async fn an_https_workload_trusted_through_its_ca_file_finishes_the_job(t) {
        let server = Https::start().await;
        let ca = server.write_ca_file();
        let id = enqueue(&t.queue, json!({"n": 7}), 3).await;
        let spec = WorkloadSpec {
            ca_file: Some(ca.path().to_path_buf()),
            ..WorkloadSpec::new("tls.echo", &server.url)
        };
        let running = start(&t.queue, spec);
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!((job.result, job.retries), (Some(json!({"echo": {"n": 7}})), 0));
        running.control.stop();
        let summary = running.task.await.unwrap().unwrap();
        assert_eq!((summary.dispatched, summary.finished), (1, 1));
    }

    async fn an_https_workload_whose_ca_is_not_trusted_fails_with_the_tls_error_and_is_retried(t) {
        let server = Https::start().await;
        let id = enqueue(&t.queue, json!({}), 2).await;
        let running = start(&t.queue, WorkloadSpec::new("tls.echo", &server.url));
        let job = kit::wait_for_state(&t.queue, id, JobState::Failed).await;
        assert_eq!(job.retries, 1, "both tries were made");
        assert_eq!(
            job.result,
            Some(json!("TLS handshake with the workload failed: invalid peer certificate: UnknownIssuer (is its certificate signed by a CA in the system's roots or the workload's ca_file?)"))
        );
        running.control.stop();
        let summary = running.task.await.unwrap().unwrap();
        assert_eq!((summary.dispatched, summary.retried, summary.failed), (2, 1, 1));
    }
}

#[test]
fn a_ca_file_for_a_plain_http_workload_is_refused() {
    let spec = WorkloadSpec {
        ca_file: Some("/etc/ca.pem".into()),
        ..WorkloadSpec::new("w", "http://127.0.0.1:1/")
    };
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "invalid option: workload \"w\": ca_file is for https:// workloads only, and the url is \"http://127.0.0.1:1/\""
    );
}
