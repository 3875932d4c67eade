//! The SQLite backend (being written).
use sqlx::SqliteConnection;
use crate::error::Result;
use crate::job::NewJob;
/// The SQLite backend.
pub struct SqliteBackend;
impl SqliteBackend {
    /// Connects.
    pub async fn connect(_url: &str, _max: u32) -> Result<Self> { unimplemented!() }
    /// Enqueues in a transaction.
    pub async fn enqueue_in(&self, _c: &mut SqliteConnection, _j: &[NewJob]) -> Result<Vec<i64>> { unimplemented!() }
}
