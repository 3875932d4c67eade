//! Enqueue jobs and process them on the embedded SQLite default, in one process.
//!
//! ```text
//! cargo run -p underling-examples --example quickstart
//! ```
//! Pass a database URL as the first argument to use another store, e.g.
//! `postgres://postgres@127.0.0.1/test`.

use serde::Deserialize;
use serde_json::json;
use underling::{
    EnqueueOptions, JobContext, Queue, Registry, Task, TaskResult, Worker, WorkerOptions,
};

#[derive(Deserialize)]
struct Resize {
    image: String,
    width: u32,
}

/// A task: resize an image (pretend).
#[derive(Default)]
struct ResizeTask;

#[underling::async_trait]
impl Task for ResizeTask {
    type Args = Resize;
    fn name(&self) -> &'static str {
        "image.resize"
    }
    async fn run(&self, ctx: &JobContext, args: Resize) -> TaskResult {
        ctx.progress(json!(50)).await?;
        Ok(json!({ "thumbnail": format!("{}@{}px", args.image, args.width) }))
    }
}
underling::register_task!(ResizeTask);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| underling::DEFAULT_DATABASE_URL.to_string());
    let queue = Queue::connect_and_migrate(&url).await?;

    // One at a time, with options...
    let first = queue
        .enqueue(
            "image.resize",
            json!({"image": "cat.png", "width": 64}),
            EnqueueOptions::new().priority(10),
        )
        .await?;
    // ...or many in one round trip; this one waits for the first.
    let batch: Vec<underling::NewJob> = ["dog.png", "owl.png"]
        .iter()
        .map(|image| {
            underling::NewJob::new(
                "image.resize",
                json!({"image": image, "width": 128}),
                EnqueueOptions::new().parent(first),
            )
        })
        .collect::<Result<_, _>>()?;
    let ids = queue.enqueue_batch(&batch).await?;
    println!("enqueued jobs {first} and {ids:?}");

    // A worker that exits when nothing is left (`burst`).
    let mut registry = Registry::new();
    registry.register(ResizeTask)?;
    let options = WorkerOptions {
        burst: true,
        ..WorkerOptions::default()
    };
    let summary = Worker::new(queue.clone(), registry, options).run().await?;
    println!("performed {} jobs", summary.performed);

    for id in std::iter::once(first).chain(ids) {
        let job = queue.job(id).await?.expect("job exists");
        println!(
            "job {id}: {} result={} notes={}",
            job.state,
            job.result.unwrap_or_default(),
            serde_json::Value::Object(job.notes)
        );
    }
    queue.close().await;
    Ok(())
}
