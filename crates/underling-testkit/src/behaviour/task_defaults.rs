//! Task defaults: the queue, priority and attempts a task declares apply to its jobs on every
//! enqueue path that leaves them unset, once a worker that runs it has published them, also in
//! a process that does not link the task.

use std::time::Duration;

use serde_json::{Value, json};
use underling::{
    EnqueueOptions, Error, JobContext, NewJob, Pool, Queue, Registry, Task, TaskOptions, TaskResult,
};

use crate::support::*;

/// `test.mail`: declares queue `mail`, priority 5, three attempts and a 30 s timeout.
#[derive(Default)]
pub struct Mail;

#[underling::async_trait]
impl Task for Mail {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.mail"
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            queue: Some("mail".into()),
            priority: Some(5),
            attempts: Some(3),
            timeout: Some(Duration::from_secs(30)),
            ..TaskOptions::default()
        }
    }
    async fn run(&self, _ctx: &JobContext, args: Value) -> TaskResult {
        Ok(args)
    }
}

/// A task that declares nothing.
#[derive(Default)]
struct Plain;

#[underling::async_trait]
impl Task for Plain {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.plain"
    }
    async fn run(&self, _ctx: &JobContext, args: Value) -> TaskResult {
        Ok(args)
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(Mail).unwrap();
    registry.register(Plain).unwrap();
    registry
}

/// (queue, priority, attempts) of job `id`.
async fn shape(queue: &Queue, id: i64) -> (String, i32, i32) {
    let job = job(queue, id).await;
    (job.queue, job.priority, job.attempts)
}

behaviours! {
    async fn published_task_defaults_apply_to_an_enqueue_by_name(t) {
        let queue = t.queue.clone();
        queue.publish_tasks(&registry()).await.unwrap();
        let id = queue.enqueue("test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
        assert_eq!(shape(&queue, id).await, ("mail".to_string(), 5, 3));
    }

    async fn what_the_enqueue_sets_wins_over_the_published_defaults(t) {
        let queue = t.queue.clone();
        queue.publish_tasks(&registry()).await.unwrap();
        let all = EnqueueOptions::new().queue("urgent").priority(-1).attempts(1);
        let id = queue.enqueue("test.mail", json!({}), all).await.unwrap();
        assert_eq!(shape(&queue, id).await, ("urgent".to_string(), -1, 1));
        let some = EnqueueOptions::new().attempts(7);
        let id = queue.enqueue("test.mail", json!({}), some).await.unwrap();
        assert_eq!(shape(&queue, id).await, ("mail".to_string(), 5, 7));
    }

    async fn a_task_that_declares_nothing_or_was_never_published_gets_the_built_in_defaults(t) {
        let queue = t.queue.clone();
        queue.publish_tasks(&registry()).await.unwrap();
        let plain = queue.enqueue("test.plain", json!({}), EnqueueOptions::new()).await.unwrap();
        let unknown = queue.enqueue("test.unknown", json!({}), EnqueueOptions::new()).await.unwrap();
        assert_eq!(shape(&queue, plain).await, ("default".to_string(), 0, 1));
        assert_eq!(shape(&queue, unknown).await, ("default".to_string(), 0, 1));
    }

    async fn published_task_defaults_apply_to_each_job_of_a_batch(t) {
        let queue = t.queue.clone();
        queue.publish_tasks(&registry()).await.unwrap();
        let jobs = [
            NewJob::new("test.mail", json!({}), EnqueueOptions::new()).unwrap(),
            NewJob::new("test.plain", json!({}), EnqueueOptions::new()).unwrap(),
            NewJob::new("test.mail", json!({}), EnqueueOptions::new().queue("bulk")).unwrap(),
        ];
        let ids = queue.enqueue_batch(&jobs).await.unwrap();
        assert_eq!(shape(&queue, ids[0]).await, ("mail".to_string(), 5, 3));
        assert_eq!(shape(&queue, ids[1]).await, ("default".to_string(), 0, 1));
        assert_eq!(shape(&queue, ids[2]).await, ("bulk".to_string(), 5, 3));
    }

    async fn published_task_defaults_apply_to_a_transactional_enqueue(t) {
        let queue = t.queue.clone();
        queue.publish_tasks(&registry()).await.unwrap();
        let id = match queue.pool() {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                let id = queue.enqueue_in(&mut tx, "test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
                tx.commit().await.unwrap();
                id
            }
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                let id = queue.enqueue_in(&mut tx, "test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
                tx.commit().await.unwrap();
                id
            }
            other => panic!("a pool this behaviour does not know: {other:?}"),
        };
        assert_eq!(shape(&queue, id).await, ("mail".to_string(), 5, 3));
    }

    /// Another process (here another `Queue` over the same store) that read the defaults
    /// before a worker published them picks them up within a second for a task it had not
    /// seen.
    async fn an_enqueuer_that_does_not_link_the_task_applies_defaults_published_later(t) {
        let queue = t.queue.clone();
        let enqueuer = Queue::from_store(t.store.clone());
        let before = enqueuer.enqueue("test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
        assert_eq!(shape(&queue, before).await, ("default".to_string(), 0, 1));
        queue.publish_tasks(&registry()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let after = enqueuer.enqueue("test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
        assert_eq!(shape(&queue, after).await, ("mail".to_string(), 5, 3));
    }

    async fn published_task_defaults_are_listed_by_name_and_replaced_on_republish(t) {
        let queue = t.queue.clone();
        assert!(queue.tasks().await.unwrap().is_empty());
        queue.publish_tasks(&registry()).await.unwrap();
        let tasks = queue.tasks().await.unwrap();
        let listed: Vec<_> = tasks
            .iter()
            .map(|d| (d.name.as_str(), d.queue.as_deref(), d.priority, d.attempts, d.timeout_ms))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("test.mail", Some("mail"), Some(5), Some(3), Some(30_000)),
                ("test.plain", None, None, None, None),
            ]
        );
        let first = tasks[0].published;
        tick().await;
        queue.publish_tasks(&registry()).await.unwrap();
        let again = queue.tasks().await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(again[0].published > first, "republished");
    }

    async fn typed_enqueue_applies_the_tasks_own_defaults_before_any_worker_published(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue_task::<Mail>(json!({}), EnqueueOptions::new().priority(9)).await.unwrap();
        assert_eq!(shape(&queue, id).await, ("mail".to_string(), 9, 3));
    }

    async fn a_task_that_declares_a_bad_default_queue_or_attempts_is_refused(_t) {
        struct Bad(TaskOptions);
        #[underling::async_trait]
        impl Task for Bad {
            type Args = Value;
            fn name(&self) -> &'static str {
                "test.bad"
            }
            fn options(&self) -> TaskOptions {
                self.0.clone()
            }
            async fn run(&self, _ctx: &JobContext, args: Value) -> TaskResult {
                Ok(args)
            }
        }
        let queue = TaskOptions { queue: Some(" mail".into()), ..TaskOptions::default() };
        let err = Registry::new().register(Bad(queue)).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("invalid option: task \"test.bad\" declares a bad default queue: {}", Error::InvalidQueue(" mail".into()))
        );
        let attempts = TaskOptions { attempts: Some(0), ..TaskOptions::default() };
        let err = Registry::new().register(Bad(attempts)).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: task \"test.bad\" declares 0 default attempts: it must be at least 1"
        );
    }
}
