//! Stored HTTP workloads: added, listed, replaced and removed by name; bad ones write nothing.

use std::time::Duration;

use underling::{Error, WorkloadMode, WorkloadSpec};

behaviours! {
    async fn an_added_workload_is_listed_with_its_settings(t) {
        let queue = t.queue.clone();
        let mut spec = WorkloadSpec::new("image.resize", "http://127.0.0.1:8000/resize");
        spec.mode = WorkloadMode::Async;
        spec.lease = Some(Duration::from_secs(120));
        spec.headers.insert("Authorization".into(), "Bearer ${TOKEN}".into());
        queue.add_workload(&spec, false).await.unwrap();
        queue.add_workload(&WorkloadSpec::new("a.first", "https://example.com/"), false).await.unwrap();
        let stored = queue.workloads().await.unwrap();
        let names: Vec<&str> = stored.iter().map(|w| w.spec.name.as_str()).collect();
        assert_eq!(names, ["a.first", "image.resize"]);
        assert_eq!(stored[1].spec, spec);
        assert_eq!(stored[1].created, stored[1].updated);
        assert_eq!(queue.workload("image.resize").await.unwrap().map(|w| w.spec), Some(spec));
        assert_eq!(queue.workload("nope").await.unwrap(), None);
    }

    async fn adding_a_workload_of_a_stored_name_fails_unless_replaced(t) {
        let queue = t.queue.clone();
        queue.add_workload(&WorkloadSpec::new("w", "http://one/"), false).await.unwrap();
        let err = queue.add_workload(&WorkloadSpec::new("w", "http://two/"), false).await.unwrap_err();
        assert!(matches!(err, Error::WorkloadExists(ref name) if name == "w"), "{err}");
        assert_eq!(queue.workload("w").await.unwrap().unwrap().spec.url, "http://one/");
        queue.add_workload(&WorkloadSpec::new("w", "http://two/"), true).await.unwrap();
        let stored = queue.workload("w").await.unwrap().unwrap();
        assert_eq!(stored.spec.url, "http://two/");
        assert!(stored.updated >= stored.created);
    }

    async fn a_bad_workload_writes_nothing(t) {
        let queue = t.queue.clone();
        let bad = WorkloadSpec { max_concurrency: 0, ..WorkloadSpec::new("w", "http://h/") };
        assert!(matches!(queue.add_workload(&bad, false).await, Err(Error::InvalidOption(_))));
        let bad = WorkloadSpec::new("w", "mailto:x@example.com");
        assert!(matches!(queue.add_workload(&bad, false).await, Err(Error::InvalidOption(_))));
        assert!(queue.workloads().await.unwrap().is_empty());
    }

    async fn removing_a_workload_forgets_it_and_an_unknown_one_is_not_found(t) {
        let queue = t.queue.clone();
        queue.add_workload(&WorkloadSpec::new("w", "http://h/"), false).await.unwrap();
        queue.remove_workload("w").await.unwrap();
        assert!(queue.workloads().await.unwrap().is_empty());
        let err = queue.remove_workload("w").await.unwrap_err();
        assert_eq!(err.to_string(), "workload \"w\" not found");
    }

    async fn removing_a_workload_revokes_its_token(t) {
        let queue = t.queue.clone();
        queue.add_workload(&WorkloadSpec::new("w", "http://h/"), false).await.unwrap();
        let token = queue.generate_workload_token("w").await.unwrap();
        assert_eq!(queue.workload_of_token(&token).await.unwrap().as_deref(), Some("w"));
        queue.remove_workload("w").await.unwrap();
        assert_eq!(queue.workload_of_token(&token).await.unwrap(), None);
        assert!(!queue.revoke_workload_token("w").await.unwrap());
    }

    async fn removing_a_workload_that_is_not_stored_keeps_the_token_of_that_name(t) {
        // A workload of a workers' TOML file has a token and no stored definition.
        let queue = t.queue.clone();
        let token = queue.generate_workload_token("from-file").await.unwrap();
        let err = queue.remove_workload("from-file").await.unwrap_err();
        assert_eq!(err.to_string(), "workload \"from-file\" not found");
        assert_eq!(queue.workload_of_token(&token).await.unwrap().as_deref(), Some("from-file"));
    }
}
