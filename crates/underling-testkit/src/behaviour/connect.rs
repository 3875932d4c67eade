//! Connecting and migrating: a migrated store migrates again without applying anything.

behaviours! {
    async fn migrate_again_applies_nothing(t) {
        let queue = t.queue.clone();
        assert_eq!(queue.migrate().await.unwrap(), vec![]);
        t.store.check_migrated().await.unwrap();
    }
}
