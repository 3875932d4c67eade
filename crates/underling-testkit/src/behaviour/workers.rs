//! Workers: registration, heartbeats and remote commands.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::{Heartbeat, RegisterWorker};
use underling::{Command, Error};

use crate::support::*;

behaviours! {
    async fn registered_worker_is_listed_with_its_host_pid_and_status(t) {
        let queue = t.queue.clone();
        let before = Utc::now() - chrono::Duration::seconds(1);
        let status = json!({"queues": ["default"], "concurrency": 4});
        let id = t
            .store
            .register_worker(RegisterWorker { host: "host-a", pid: 1234, status: &status, now: None })
            .await
            .unwrap();
        let workers = queue.workers().await.unwrap();
        assert_eq!(workers.len(), 1);
        let w = &workers[0];
        assert_eq!(w.id, id);
        assert_eq!(w.host, "host-a");
        assert_eq!(w.pid, 1234);
        assert_eq!(w.status, json!({"queues": ["default"], "concurrency": 4}));
        assert!(w.jobs.is_empty());
        assert!(w.started > before && w.started < Utc::now() + chrono::Duration::seconds(1));
        assert!(w.last_heartbeat >= w.started - chrono::Duration::milliseconds(1));
        assert_eq!(&queue.worker(id).await.unwrap(), w);
    }

    async fn workers_are_listed_oldest_first(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        let c = worker(t).await;
        assert!(a < b && b < c);
        let ids: Vec<i64> = queue.workers().await.unwrap().iter().map(|w| w.id).collect();
        assert_eq!(ids, vec![a, b, c]);
    }

    async fn heartbeat_updates_the_status_and_time(t) {
        let queue = t.queue.clone();
        let id = worker(t).await;
        let first = queue.worker(id).await.unwrap();
        tick().await;
        assert!(t.store.heartbeat(Heartbeat { id, status: &json!({"jobs": 3}), missing_after: Duration::from_secs(6), now: None }).await.unwrap().recorded);
        let second = queue.worker(id).await.unwrap();
        assert_eq!(second.status, json!({"jobs": 3}));
        assert!(second.last_heartbeat > first.last_heartbeat);
        assert_eq!(second.started, first.started);
    }

    async fn heartbeat_of_a_removed_worker_returns_false(t) {
        let queue = t.queue.clone();
        let id = worker(t).await;
        t.store.unregister_worker(id).await.unwrap();
        assert!(!t.store.heartbeat(Heartbeat { id, status: &json!({}), missing_after: Duration::from_secs(6), now: None }).await.unwrap().recorded);
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn unregister_removes_only_that_worker(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        t.store.unregister_worker(a).await.unwrap();
        let ids: Vec<i64> = queue.workers().await.unwrap().iter().map(|w| w.id).collect();
        assert_eq!(ids, vec![b]);
    }

    async fn worker_that_does_not_exist_is_worker_not_found(t) {
        let queue = t.queue.clone();
        let err = queue.worker(42).await.unwrap_err();
        assert!(matches!(err, Error::WorkerNotFound(42)), "{err:?}");
        assert_eq!(err.to_string(), "worker 42 not found");
    }

    async fn workers_list_the_ids_of_their_running_jobs(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        let ids = [
            enqueue(&queue, "add").await,
            enqueue(&queue, "add").await,
            enqueue(&queue, "add").await,
            enqueue(&queue, "add").await,
        ];
        assert_eq!(claim_ids(t, a, &["default"], 2).await, ids[..2].to_vec());
        let on_b = claim(t, b, &["default"], 1).await;
        finish(t, &on_b[0], json!(null)).await;
        assert_eq!(claim_ids(t, b, &["default"], 1).await, vec![ids[3]]);
        let workers = queue.workers().await.unwrap();
        assert_eq!(workers[0].jobs, ids[..2].to_vec());
        assert_eq!(workers[1].jobs, vec![ids[3]], "finished jobs are not listed");
    }

    async fn broadcast_to_all_reaches_every_worker(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        assert_eq!(queue.broadcast("stop", json!([42]), &[]).await.unwrap(), 2);
        let stop = Command { command: "stop".into(), args: json!([42]) };
        assert_eq!(t.store.receive(a).await.unwrap(), vec![stop.clone()]);
        assert_eq!(t.store.receive(b).await.unwrap(), vec![stop]);
    }

    async fn broadcast_to_some_ids_reaches_only_them(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        let c = worker(t).await;
        assert_eq!(queue.broadcast("kill", json!([7]), &[a, c, 999]).await.unwrap(), 2);
        let kill = Command { command: "kill".into(), args: json!([7]) };
        assert_eq!(t.store.receive(a).await.unwrap(), vec![kill.clone()]);
        assert!(t.store.receive(b).await.unwrap().is_empty());
        assert_eq!(t.store.receive(c).await.unwrap(), vec![kill]);
    }

    async fn broadcast_with_no_workers_reaches_nobody(t) {
        let queue = t.queue.clone();
        assert_eq!(queue.broadcast("stop", json!([1]), &[]).await.unwrap(), 0);
    }

    async fn broadcast_with_an_empty_command_is_invalid(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let err = queue.broadcast("", json!([]), &[]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidCommand(_)), "{err:?}");
        assert!(t.store.receive(w).await.unwrap().is_empty());
    }

    async fn broadcast_of_an_unknown_command_is_refused_and_sends_nothing(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let err = queue.broadcast("stopp", json!([3]), &[]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid remote command: unknown command \"stopp\": expected one of stop, kill, jobs, pause, resume"
        );
        assert!(t.store.receive(w).await.unwrap().is_empty());
    }

    async fn broadcast_of_a_command_with_arguments_that_make_no_sense_is_refused(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let err = queue.broadcast("stop", json!([]), &[]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid remote command: stop needs a job id as its argument, e.g. [42], got []"
        );
        let err = queue.broadcast("jobs", json!(["many"]), &[]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid remote command: jobs needs a number of jobs (0 or more) as its argument, e.g. [4], got [\"many\"]"
        );
        let err = queue.broadcast("jobs", json!([-1]), &[]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidCommand(_)), "{err:?}");
        assert!(t.store.receive(w).await.unwrap().is_empty());
    }

    async fn stop_job_sends_stop_to_the_worker_running_the_job(t) {
        let queue = t.queue.clone();
        let a = worker(t).await;
        let b = worker(t).await;
        let id = enqueue(&queue, "add").await;
        let job = claim_one(t, b).await;
        assert_eq!(job.id, id);
        assert_eq!(queue.stop_job(id, false).await.unwrap(), b);
        assert_eq!(queue.stop_job(id, true).await.unwrap(), b);
        assert!(t.store.receive(a).await.unwrap().is_empty());
        assert_eq!(
            t.store.receive(b).await.unwrap(),
            vec![
                Command { command: "stop".into(), args: json!([id]) },
                Command { command: "kill".into(), args: json!([id]) },
            ]
        );
    }

    async fn stop_job_of_a_job_that_is_not_running_says_so(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let id = enqueue(&queue, "add").await;
        let err = queue.stop_job(id, false).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("job {id} is not running (it is inactive): only an active job can be stopped or killed")
        );
        assert!(matches!(queue.stop_job(999_999, true).await.unwrap_err(), Error::JobNotFound(999_999)));
        assert!(t.store.receive(w).await.unwrap().is_empty());
    }

    async fn receive_drains_the_inbox_in_order(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        for (i, command) in ["jobs", "stop", "jobs"].iter().enumerate() {
            queue.broadcast(command, json!([i]), &[w]).await.unwrap();
        }
        let got = t.store.receive(w).await.unwrap();
        let expected = vec![
            Command { command: "jobs".into(), args: json!([0]) },
            Command { command: "stop".into(), args: json!([1]) },
            Command { command: "jobs".into(), args: json!([2]) },
        ];
        assert_eq!(got, expected);
        assert!(t.store.receive(w).await.unwrap().is_empty());
    }
}
