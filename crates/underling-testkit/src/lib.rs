//! # underling-testkit
//!
//! The behaviour suite of underling's storage contract ([`underling::Store`]) and of its
//! worker runtime, as public functions over a store, so that every backend runs the same
//! suite: SQLite in memory and PostgreSQL (a fresh schema per test) here, and any new backend
//! in its own crate.
//!
//! - A [`TestStore`] is what each behaviour gets: a [`underling::Queue`] and the
//!   [`underling::Store`] under it (the same store), and how to clean up afterwards.
//! - A [`Factory`] opens a fresh, migrated [`TestStore`] for each behaviour (or says why it
//!   cannot, to skip it). [`Factory::sqlite`] and [`Factory::postgres`] are the two built in.
//! - A [`Behaviour`] is one named async check. The [`behaviour`] and [`worker`] modules hold
//!   the suite, one module per area, each with an `all()` list; [`all()`] is all of it, and
//!   [`behaviours!`] defines more.
//! - [`trials`] turns factories × behaviours into [`libtest_mimic::Trial`]s named
//!   `backend::module::behaviour` (e.g. `sqlite::enqueue::enqueue_returns_ascending_ids`),
//!   each run on its own tokio runtime (multi-threaded, two workers).
//!
//! ## Running the suite against a new backend
//!
//! Add a test target with `harness = false` to the backend's crate:
//!
//! ```toml
//! [[test]]
//! name = "suite"
//! harness = false
//!
//! [dev-dependencies]
//! underling-testkit = { path = "../underling-testkit" }
//! libtest-mimic = "0.8"
//! ```
//!
//! and give its `main` a factory that opens a fresh, migrated store per behaviour:
//!
//! ```no_run
//! use std::sync::Arc;
//! use underling_testkit::{Factory, TestStore};
//!
//! # async fn open_my_store() -> Arc<dyn underling::Store> { unimplemented!() }
//! fn main() {
//!     let mine = Factory::new("mystore", || async {
//!         let store: Arc<dyn underling::Store> = open_my_store().await;
//!         store.migrate().await.expect("migrate");
//!         // Drop whatever the store created once the behaviour has run.
//!         Ok(TestStore::new(store).with_cleanup(|store| async move { store.close().await }))
//!     });
//!     let args = libtest_mimic::Arguments::from_args();
//!     libtest_mimic::run(&args, underling_testkit::trials(&[mine])).exit();
//! }
//! ```
//!
//! `cargo test` then runs every behaviour on it, filters work as usual
//! (`cargo test --test suite -- mystore::claim::`), and a failure names the behaviour. A few
//! behaviours read or change the database directly (through [`underling::Pool`]) to set up a
//! situation the API cannot, such as a job made due early ([`support::make_due`]); they
//! panic with a clear message on a pool they do not know. On a SQLite store, the behaviour
//! that hands `enqueue_in` a connection of the other dialect needs the PostgreSQL test server
//! below for that connection. [`trials_of`] runs a chosen list of behaviours instead of all.
//!
//! ## Other tools
//!
//! Tests that are about one backend (URLs, files, the application's own pools) are plain
//! `#[tokio::test]`s in this crate's `tests/`, built from the same parts: [`sqlite()`] and
//! [`postgres()`] open a [`TestStore`] directly, [`support`] has the helpers the behaviours use
//! (claiming and settling through the store, running workers, waiting for states), [`tasks`]
//! the tasks the worker behaviours run, and [`HeldStore`] wraps any store to hold back a
//! worker's writes of outcomes or the replies to its claims, or make its heartbeats hang or
//! fail ([`Heartbeats`]).
//!
//! ## PostgreSQL
//!
//! The PostgreSQL factory connects to `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and migrates a fresh schema per behaviour,
//! dropped afterwards over a connection of its own. When the server cannot be reached, the
//! behaviour fails under CI (`CI` set) and is skipped elsewhere, with a loud `!!!! SKIPPING`
//! message on standard error.
//!
//! ## PostgreSQL with TLS
//!
//! [`tls_server()`] is the second server that `scripts/ensure-tls-postgres.sh` starts (port
//! 5433, `ssl = on`, a certificate signed by a CA the script makes): `UNDERLING_TLS_TEST_URL`,
//! `UNDERLING_TLS_CA`, `UNDERLING_TLS_WRONG_CA`. The same rule holds: unreachable is a failure
//! under CI and a loud skip elsewhere.

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;

pub use held::{Beats, Heartbeats, HeldStore, Hold};
pub use stores::{
    Factory, Skip, TempSqlite, TestStore, drop_schema, postgres, postgres_url, sqlite,
    unique_schema,
};
pub use tls::{TlsServer, tls_ca, tls_server, tls_url, tls_wrong_ca};

/// A behaviour's body: runs against the store it is given and panics when the store
/// misbehaves.
pub type BehaviourFn = for<'a> fn(&'a TestStore) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One named behaviour of the suite.
#[derive(Clone, Copy)]
pub struct Behaviour {
    /// The module it belongs to (its last path segment, e.g. `enqueue`).
    pub module: &'static str,
    /// Its name, the name of its function.
    pub name: &'static str,
    /// Runs it.
    pub run: BehaviourFn,
}

impl Behaviour {
    /// A behaviour of the module whose `module_path!()` is given.
    pub fn new(module_path: &'static str, name: &'static str, run: BehaviourFn) -> Self {
        let module = module_path.rsplit("::").next().unwrap_or(module_path);
        Behaviour { module, name, run }
    }
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module, self.name)
    }
}

/// Defines behaviours, one public async function each taking a [`TestStore`], and the
/// module's `pub fn all() -> Vec<Behaviour>` listing them in source order.
///
/// ```ignore
/// behaviours! {
///     /// What it checks.
///     async fn enqueue_returns_ascending_ids(t) {
///         let queue = t.queue.clone();
///         // ...
///     }
/// }
/// ```
#[macro_export]
macro_rules! behaviours {
    ($( $(#[$meta:meta])* async fn $name:ident($t:ident) $body:block )*) => {
        $(
            #[doc = concat!("Behaviour `", stringify!($name), "`.")]
            $(#[$meta])*
            pub async fn $name($t: &$crate::TestStore) $body
        )*

        /// Every behaviour of this module, in source order.
        pub fn all() -> ::std::vec::Vec<$crate::Behaviour> {
            ::std::vec![$(
                $crate::Behaviour::new(module_path!(), stringify!($name), |t| {
                    ::std::boxed::Box::pin($name(t))
                })
            ),*]
        }
    };
}

// The modules come after the macro, which they use.
pub mod arbitrary;
pub mod behaviour;
mod counts;
pub mod held;
mod stores;
pub mod support;
pub mod tasks;
mod tls;
pub mod worker;

/// The whole suite: the storage behaviours, then the worker's.
pub fn all() -> Vec<Behaviour> {
    let mut all = behaviour::all();
    all.extend(worker::all());
    all
}

/// One trial per factory and behaviour of the whole suite ([`all()`]), named
/// `factory::module::behaviour`.
pub fn trials(factories: &[Factory]) -> Vec<libtest_mimic::Trial> {
    trials_of(factories, &all())
}

/// One trial per factory and behaviour given, named `factory::module::behaviour`. Each runs
/// on its own tokio runtime (multi-threaded, two workers): the factory opens a fresh store,
/// the behaviour runs, and the store is cleaned up even when the behaviour panicked. A
/// factory that cannot open its store ([`Skip`]) marks the trial ignored at run time.
pub fn trials_of(factories: &[Factory], behaviours: &[Behaviour]) -> Vec<libtest_mimic::Trial> {
    let mut trials = Vec::with_capacity(factories.len() * behaviours.len());
    for factory in factories {
        for behaviour in behaviours {
            let name = format!(
                "{}::{}::{}",
                factory.name(),
                behaviour.module,
                behaviour.name
            );
            let (factory, behaviour) = (factory.clone(), *behaviour);
            trials.push(libtest_mimic::Trial::ignorable_test(name, move || {
                run_one(&factory, behaviour)
            }));
        }
    }
    trials
}

/// Runs one behaviour on a fresh store of `factory`, on a runtime of its own.
fn run_one(
    factory: &Factory,
    behaviour: Behaviour,
) -> Result<libtest_mimic::Completion, libtest_mimic::Failed> {
    use futures_util::FutureExt;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    runtime.block_on(async {
        let t = match factory.open().await {
            Ok(t) => t,
            Err(Skip(reason)) => return Ok(libtest_mimic::Completion::ignored_with(reason)),
        };
        let ran = std::panic::AssertUnwindSafe((behaviour.run)(&t))
            .catch_unwind()
            .await;
        // Whatever a behaviour did to jobs, the counters must agree with the rows.
        let counted = match ran {
            Ok(()) => counts::check(&t).await,
            Err(_) => Ok(()),
        };
        t.cleanup().await;
        match ran {
            Ok(()) => counted
                .map(|()| libtest_mimic::Completion::Completed)
                .map_err(libtest_mimic::Failed::from),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
