//! `/readyz` says 503 when the database cannot answer or is not migrated, while `/healthz`
//! stays 200.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use underling::{ConnectOptions, Queue};
use underling_server::{Server, ServerOptions};

use support::{assert_error, send};

/// Serves `queue` on an ephemeral port; its URL and a sender that stops it.
async fn serve(queue: Queue) -> (String, tokio::sync::oneshot::Sender<()>) {
    let options = ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerOptions::default()
    };
    let server = Server::bind(queue, options).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// A TCP proxy to `target` on an ephemeral port; aborting the returned task cuts every
/// connection and refuses new ones.
async fn proxy(target: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_postgres_cannot_be_reached() {
    let mut url = reqwest::Url::parse(&underling_testkit::postgres_url()).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let (port, cut) = proxy(target).await;
    url.set_port(Some(port)).unwrap();
    let schema = underling_testkit::unique_schema();
    let options = ConnectOptions::new(url.as_str())
        .schema(&schema)
        .migrate(true);
    let queue = match Queue::connect_with(options).await {
        Ok(queue) => queue,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("\n!!!! SKIPPING readyz_is_503_when_postgres_cannot_be_reached: {e}\n");
            return;
        }
        Err(e) => panic!("PostgreSQL is required in CI: {e}"),
    };
    let (base, stop) = serve(queue.clone()).await;
    let client = reqwest::Client::new();
    let (status, body) = send(client.get(format!("{base}/readyz"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));

    cut.abort();
    let _ = cut.await;
    let (status, body) = send(client.get(format!("{base}/readyz"))).await;
    let message = assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    );
    assert!(!message.contains("postgres://"), "{message}");
    let (status, _) = send(client.get(format!("{base}/healthz"))).await;
    assert_eq!(status, StatusCode::OK);
    // Other routes say so too, without details.
    let (status, body) = send(client.get(format!("{base}/api/v1/stats"))).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    );

    let _ = stop.send(());
    queue.close().await;
    underling_testkit::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_database_is_not_migrated() {
    let file = underling_testkit::TempSqlite::new("readyz");
    let options = ConnectOptions::new(file.url()).migrate(true);
    // Created, not migrated.
    let queue = Queue::connect_unchecked(&options).await.unwrap();
    let (base, stop) = serve(queue.clone()).await;
    let client = reqwest::Client::new();
    let (status, body) = send(client.get(format!("{base}/readyz"))).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "not_migrated",
    );
    queue.migrate().await.unwrap();
    let (status, body) = send(client.get(format!("{base}/readyz"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    let _ = stop.send(());
    queue.close().await;
}
