//! Enqueue a job inside the application's own transaction: the job exists if and only if the
//! transaction commits.
//!
//! ```text
//! cargo run -p underling-examples --example transactional_enqueue -- postgres://postgres@127.0.0.1/test
//! ```

use serde_json::json;
use underling::{EnqueueOptions, Pool, Queue};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let queue = Queue::connect_and_migrate(&url).await?;
    // The application's own pool; the queue's (`queue.pool()`) would do as well.
    let Pool::Postgres(pool) = queue.pool() else {
        anyhow::bail!("this example needs a postgres:// URL");
    };

    sqlx::query("CREATE TABLE IF NOT EXISTS example_signups (email TEXT PRIMARY KEY)")
        .execute(&pool)
        .await?;

    // The signup row and its welcome-mail job commit together...
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO example_signups (email) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind("ada@example.com")
        .execute(&mut *tx)
        .await?;
    let committed = queue
        .enqueue_in(
            &mut tx,
            "mail.welcome",
            json!({"to": "ada@example.com"}),
            EnqueueOptions::new(),
        )
        .await?;
    tx.commit().await?;

    // ...or not at all.
    let mut tx = pool.begin().await?;
    let rolled_back = queue
        .enqueue_in(
            &mut tx,
            "mail.welcome",
            json!({"to": "bob@example.com"}),
            EnqueueOptions::new(),
        )
        .await?;
    tx.rollback().await?;

    println!(
        "job {committed} exists: {}; job {rolled_back} exists: {}",
        queue.job(committed).await?.is_some(),
        queue.job(rolled_back).await?.is_some()
    );
    queue.close().await;
    Ok(())
}
