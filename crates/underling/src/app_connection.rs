//! Enqueueing on the application's own connections and transactions.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::TaskDefaults;
use crate::store::{Enqueue, Store};
use crate::unique::Enqueued;

/// A connection or transaction of the application's own, on which [`crate::Queue::enqueue_in`]
/// writes jobs: they exist if and only if it commits.
///
/// Implemented for `&mut` PostgreSQL and SQLite connections and transactions of the sqlx that
/// underling re-exports ([`crate::sqlx`]), so that the transaction's type picks the dialect: a
/// PostgreSQL transaction given to a SQLite queue (or the reverse) is
/// [`crate::Error::WrongBackend`], found before anything is written.
#[async_trait]
pub trait AppConnection: Send {
    /// Inserts the jobs on this connection.
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>>;
    /// Reads the published task defaults on this connection (see [`crate::Queue::tasks`]).
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>>;
}

#[cfg(feature = "postgres")]
#[async_trait]
impl AppConnection for &mut sqlx::PgConnection {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_postgres(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_postgres(self).await
    }
}

#[cfg(feature = "postgres")]
#[async_trait]
impl AppConnection for &mut sqlx::Transaction<'_, sqlx::Postgres> {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_postgres(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_postgres(self).await
    }
}

#[cfg(feature = "postgres")]
#[async_trait]
impl AppConnection for &mut sqlx::pool::PoolConnection<sqlx::Postgres> {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_postgres(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_postgres(self).await
    }
}

#[cfg(feature = "sqlite")]
#[async_trait]
impl AppConnection for &mut sqlx::SqliteConnection {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_sqlite(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_sqlite(self).await
    }
}

#[cfg(feature = "sqlite")]
#[async_trait]
impl AppConnection for &mut sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_sqlite(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_sqlite(self).await
    }
}

#[cfg(feature = "sqlite")]
#[async_trait]
impl AppConnection for &mut sqlx::pool::PoolConnection<sqlx::Sqlite> {
    async fn enqueue(self, store: &dyn Store, p: Enqueue<'_>) -> Result<Vec<Enqueued>> {
        store.enqueue_on_sqlite(self, p).await
    }
    async fn read_tasks(&mut self, store: &dyn Store) -> Result<Vec<TaskDefaults>> {
        store.tasks_on_sqlite(self).await
    }
}
