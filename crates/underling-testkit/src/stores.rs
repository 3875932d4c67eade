//! The stores behaviours run on: [`TestStore`], the [`Factory`] that opens one per behaviour,
//! and the two built-in factories (SQLite in memory, PostgreSQL on a fresh schema).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use underling::{BackendKind, ConnectOptions, Queue, Store};

/// What a cleanup does with the store once its behaviour has run.
type Cleanup = Box<dyn FnOnce(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A fresh, migrated store for one behaviour: a [`Queue`] over it and the [`Store`] itself
/// (the same store), and what to do with it afterwards.
pub struct TestStore {
    /// A queue over [`Self::store`].
    pub queue: Queue,
    /// The store under [`Self::queue`], for the operations a queue does not offer.
    pub store: Arc<dyn Store>,
    /// In a mutex so that a `&TestStore` can be shared between threads.
    cleanup: std::sync::Mutex<Option<Cleanup>>,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("kind", &self.store.kind())
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// A test store over `store` (which must be migrated); its cleanup closes it.
    pub fn new(store: Arc<dyn Store>) -> Self {
        TestStore {
            queue: Queue::from_store(store.clone()),
            store,
            cleanup: std::sync::Mutex::new(None),
        }
    }

    /// Sets what [`Self::cleanup`] does with the store (instead of closing it), e.g. drop
    /// the schema or file the factory created.
    pub fn with_cleanup<F, Fut>(self, cleanup: F) -> Self
    where
        F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cleanup: Cleanup = Box::new(move |store| Box::pin(cleanup(store)));
        TestStore {
            cleanup: std::sync::Mutex::new(Some(cleanup)),
            ..self
        }
    }

    /// Which database the store talks to.
    pub fn kind(&self) -> BackendKind {
        self.store.kind()
    }

    /// Cleans up after the behaviour (by default, closes the store).
    pub async fn cleanup(self) {
        let cleanup = self
            .cleanup
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match cleanup {
            Some(cleanup) => cleanup(self.store).await,
            None => self.store.close().await,
        }
    }
}

/// Why a factory could not open a store: the behaviour is skipped (reported as ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

/// The future a factory returns.
type Opening = Pin<Box<dyn Future<Output = Result<TestStore, Skip>> + Send>>;

/// Opens a fresh, migrated [`TestStore`] for each behaviour, under a name that prefixes its
/// trials (`sqlite`, `postgres`, ...).
#[derive(Clone)]
pub struct Factory {
    name: String,
    open: Arc<dyn Fn() -> Opening + Send + Sync>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Factory {
    /// A factory named `name` (a plain identifier; it prefixes trial names) that opens
    /// stores with `open`. `open` runs on the behaviour's own runtime, once per behaviour;
    /// returning [`Skip`] skips the behaviour.
    pub fn new<F, Fut>(name: impl Into<String>, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<TestStore, Skip>> + Send + 'static,
    {
        Factory {
            name: name.into(),
            open: Arc::new(move || Box::pin(open())),
        }
    }

    /// SQLite in memory (`sqlite`): a fresh database per behaviour.
    pub fn sqlite() -> Self {
        Factory::new("sqlite", || async { Ok(sqlite().await) })
    }

    /// PostgreSQL (`postgres`): a fresh schema per behaviour on the server at
    /// [`postgres_url`], dropped afterwards. An unreachable server fails the behaviour under
    /// CI and skips it elsewhere (see [`postgres`]).
    pub fn postgres() -> Self {
        Factory::new("postgres", || async {
            postgres()
                .await
                .ok_or_else(|| Skip(format!("PostgreSQL at {} is not reachable", postgres_url())))
        })
    }

    /// The name that prefixes this factory's trials.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens a fresh store.
    pub async fn open(&self) -> Result<TestStore, Skip> {
        (self.open)().await
    }
}

/// The PostgreSQL server the tests use: `UNDERLING_TEST_DATABASE_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call (a valid PostgreSQL schema name).
pub fn unique_schema() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{}_{}_{}", std::process::id(), nanos, n)
}

/// A fresh, migrated SQLite database in memory.
pub async fn sqlite() -> TestStore {
    let opts = ConnectOptions::new("sqlite::memory:").migrate(true);
    let store = underling::store::open(&opts)
        .await
        .expect("in-memory SQLite must open");
    store
        .migrate()
        .await
        .expect("in-memory SQLite must migrate");
    TestStore::new(store)
}

/// A migrated store on a fresh PostgreSQL schema, dropped by [`TestStore::cleanup`] over a
/// connection of its own. `None` (with a loud `!!!! SKIPPING` message) when no server is
/// reachable outside CI; under CI (`CI` set) an unreachable server panics.
pub async fn postgres() -> Option<TestStore> {
    let url = postgres_url();
    let schema = unique_schema();
    let opts = ConnectOptions::new(&url)
        .schema(&schema)
        .max_connections(12)
        .migrate(true);
    let store = match underling::store::open(&opts).await {
        Ok(store) => store,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but {url} failed: {e}");
            }
            eprintln!(
                "\n!!!! SKIPPING the PostgreSQL half of this test: {url} is not reachable ({e}).\n\
                 !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
            );
            return None;
        }
    };
    store.migrate().await.expect("migrate the test schema");
    Some(TestStore::new(store).with_cleanup(move |store| async move {
        store.close().await;
        drop_schema(&schema).await;
    }))
}

/// Drops a schema made by [`unique_schema`] on the server at [`postgres_url`], and
/// everything in it, over a connection of its own.
pub async fn drop_schema(schema: &str) {
    use sqlx::Connection;

    let url = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url} to drop test schema {schema}: {e}"));
    assert!(
        schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "not a schema made by unique_schema: {schema:?}"
    );
    // Letters, digits and underscores (checked above), quoted.
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("drop test schema {schema}: {e}"));
    let _ = conn.close().await;
}

/// A SQLite database file in the temporary directory (not created here), removed with its
/// journal files on drop.
#[derive(Debug)]
pub struct TempSqlite {
    /// The file.
    pub path: std::path::PathBuf,
}

impl TempSqlite {
    /// A new, unique file name with `label` in it.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("underling-{label}-{}.db", unique_schema()));
        TempSqlite { path }
    }

    /// `sqlite://` and the path.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}
