//! The SQLite figures: the raw ceiling of a temporary file in WAL mode, then underling on it.

use sqlx::SqlitePool;
use underling::{Pool, Queue};

use crate::error::{BenchError, Result};
use crate::*;

pub(crate) async fn run_sqlite(
    opts: &BenchOptions,
    sizes: &Sizes,
    report: &(dyn Fn(&Measurement) + Sync),
) -> Result<Vec<Measurement>> {
    let dir = std::env::temp_dir().join(format!("underling-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.db");
    let url = format!("sqlite://{}", path.display());
    let queue =
        Queue::connect_with(ConnectOptions::new(&url).max_connections(4).migrate(true)).await?;
    let result = sqlite_figures(&queue, &url, opts, sizes, report).await;
    queue.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn sqlite_figures(
    queue: &Queue,
    url: &str,
    opts: &BenchOptions,
    sizes: &Sizes,
    report: &(dyn Fn(&Measurement) + Sync),
) -> Result<Vec<Measurement>> {
    let pool = sqlite_pool(queue)?;
    let mut rec = Recorder {
        backend: "sqlite",
        out: Vec::new(),
        report,
    };
    raw::sqlite_prepare(&pool).await?;
    let t = raw::sqlite_insert_batches(&pool, sizes.raw_batch_rows, 1000).await?;
    let raw_batch = rec.rate(
        "raw",
        "multi-row INSERT (1,000 rows each)",
        sizes.raw_batch_rows,
        t,
        "rows/s",
    );
    raw::sqlite_reset(&pool).await?;
    let t = raw::sqlite_insert_singles(&pool, sizes.raw_single).await?;
    let raw_single = rec.rate(
        "raw",
        "one INSERT per transaction, 1 client",
        sizes.raw_single,
        t,
        "rows/s",
    );
    raw::sqlite_reset(&pool).await?;
    raw::sqlite_fill(&pool, sizes.raw_claim).await?;
    let (t, n) = raw::sqlite_claim_finish(&pool).await?;
    let raw_claim = rec.rate(
        "raw",
        "claim 100 + finish in one UPDATE, 1 connection",
        n as usize,
        t,
        "jobs/s",
    );
    raw::sqlite_reset(&pool).await?;

    let library =
        enqueue_figures(queue, sizes, &mut rec, raw_single, raw_single, raw_batch).await?;
    let t = {
        let start = Instant::now();
        for _ in 0..sizes.enqueue_tx {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            queue
                .enqueue_in(
                    &mut tx,
                    NOOP,
                    Value::Null,
                    EnqueueOptions::new().queue(BENCH_QUEUE),
                )
                .await?;
            tx.commit().await?;
        }
        start.elapsed()
    };
    rec.rate(
        "enqueue",
        "transactional enqueue (BEGIN, enqueue, COMMIT)",
        sizes.enqueue_tx,
        t,
        "jobs/s",
    );
    rec.compare_last("raw one INSERT per transaction, 1 client", raw_single);
    raw::sqlite_reset(&pool).await?;

    let plain = process_figures(
        queue,
        sizes,
        &mut rec,
        ("raw claim+finish, 1 connection", raw_claim),
        || raw::sqlite_reset(&pool),
        (url, None),
        opts.worker_binary.as_ref(),
    )
    .await?;
    http::http_figures(queue, sizes, &mut rec, &library, plain, &|| {
        raw::sqlite_reset(&pool)
    })
    .await?;
    latency_figures(queue, sizes, &mut rec).await?;
    Ok(rec.out)
}

/// The connection pool of a SQLite queue.
fn sqlite_pool(queue: &Queue) -> Result<SqlitePool> {
    match queue.pool() {
        Pool::Sqlite(pool) => Ok(pool),
        _ => Err(BenchError::Usage("not a SQLite queue".into())),
    }
}
