//! Named locks with a limit and an expiry.

use std::time::Duration;

use underling::Error;

const MINUTE: Duration = Duration::from_secs(60);

behaviours! {
    async fn exclusive_lock_can_be_taken_once(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("foo", MINUTE, 1).await.unwrap());
        assert!(!queue.lock("foo", MINUTE, 1).await.unwrap());
        assert!(queue.lock("bar", MINUTE, 1).await.unwrap(), "other names are independent");
    }

    async fn shared_lock_can_be_taken_up_to_its_limit(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(!queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(queue.lock("pool", MINUTE, 3).await.unwrap(), "a higher limit allows one more");
        assert!(!queue.lock("pool", MINUTE, 3).await.unwrap());
    }

    async fn unlock_releases_one_hold(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(queue.unlock("pool").await.unwrap());
        assert!(queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(!queue.lock("pool", MINUTE, 2).await.unwrap());
        assert!(queue.unlock("pool").await.unwrap());
        assert!(queue.unlock("pool").await.unwrap());
        assert!(!queue.unlock("pool").await.unwrap());
        assert!(queue.locks(&[]).await.unwrap().is_empty());
    }

    async fn unlock_of_a_lock_not_held_returns_false(t) {
        let queue = t.queue.clone();
        assert!(!queue.unlock("nothing").await.unwrap());
    }

    async fn unlock_releases_the_hold_that_expires_first(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("x", Duration::from_secs(3600), 2).await.unwrap());
        assert!(queue.lock("x", MINUTE, 2).await.unwrap());
        assert!(queue.unlock("x").await.unwrap());
        let locks = queue.locks(&["x".to_string()]).await.unwrap();
        assert_eq!(locks.len(), 1);
        let left = locks[0].expires - chrono::Utc::now();
        assert!(left > chrono::Duration::minutes(59), "the one-hour hold is kept, {left} left");
    }

    async fn is_locked_tells_whether_a_hold_is_live(t) {
        let queue = t.queue.clone();
        assert!(!queue.is_locked("foo").await.unwrap());
        assert!(queue.lock("foo", MINUTE, 1).await.unwrap());
        assert!(queue.is_locked("foo").await.unwrap());
        assert!(queue.unlock("foo").await.unwrap());
        assert!(!queue.is_locked("foo").await.unwrap());
    }

    async fn is_locked_does_not_take_a_hold(t) {
        let queue = t.queue.clone();
        assert!(!queue.is_locked("foo").await.unwrap());
        assert!(!queue.is_locked("foo").await.unwrap());
        assert!(queue.locks(&[]).await.unwrap().is_empty());
        assert!(queue.lock("foo", MINUTE, 1).await.unwrap());
    }

    async fn lock_with_zero_duration_only_checks(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("foo", Duration::ZERO, 1).await.unwrap());
        assert!(queue.lock("foo", Duration::ZERO, 1).await.unwrap());
        assert!(queue.locks(&[]).await.unwrap().is_empty());
        assert!(queue.lock("foo", MINUTE, 1).await.unwrap());
        assert!(!queue.lock("foo", Duration::ZERO, 1).await.unwrap());
        assert!(queue.lock("foo", Duration::ZERO, 2).await.unwrap());
    }

    async fn lock_expires_after_its_duration(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("short", Duration::from_millis(1000), 1).await.unwrap());
        assert!(!queue.lock("short", MINUTE, 1).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!queue.is_locked("short").await.unwrap());
        assert!(queue.lock("short", MINUTE, 1).await.unwrap());
    }

    async fn locks_lists_live_holds_by_name(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("a", MINUTE, 2).await.unwrap());
        assert!(queue.lock("a", MINUTE, 2).await.unwrap());
        assert!(queue.lock("b", MINUTE, 1).await.unwrap());
        assert!(queue.lock("gone", Duration::from_millis(50), 1).await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let names = |locks: Vec<underling::LockInfo>| -> Vec<String> {
            locks.into_iter().map(|l| l.name).collect()
        };
        assert_eq!(names(queue.locks(&[]).await.unwrap()), vec!["a", "a", "b"]);
        assert_eq!(names(queue.locks(&["b".to_string()]).await.unwrap()), vec!["b"]);
        let a = queue.locks(&["a".to_string()]).await.unwrap();
        assert_eq!(a.len(), 2);
        assert_ne!(a[0].id, a[1].id);
    }

    async fn lock_with_an_empty_name_or_zero_limit_is_invalid(t) {
        let queue = t.queue.clone();
        let err = queue.lock("", MINUTE, 1).await.unwrap_err();
        assert_eq!(err.to_string(), "invalid option: a lock name must not be empty");
        let err = queue.lock("foo", MINUTE, 0).await.unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid option: a lock limit must be at least 1, got 0");
        assert!(queue.locks(&[]).await.unwrap().is_empty());
    }
}
