//! The squashed PostgreSQL migration (`migrations/postgres/0001_init.sql`) builds exactly the
//! schema that the development chain before it built (kept in
//! `tests/fixtures/postgres-before-squash/`), less the two functions nothing calls any more.
//!
//! The old chain is applied as plain SQL to one fresh schema, `0001_init.sql` to another (later
//! migrations change the schema on purpose); then the catalogs of both are compared: tables and
//! sequences (with their storage options), columns, constraints, indexes and functions, with the
//! schema names normalized.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached the test fails under CI
//! (`CI` set) and is skipped with a loud message elsewhere.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sqlx::{Connection, PgConnection};

/// The functions only the old chain has: the first versions of the claim and of the worker's
/// cycle, replaced by their `_v2` before any release.
const DROPPED_FUNCTIONS: [&str; 2] = ["underling_claim", "underling_settle_and_claim"];
/// The squashed migration.
const SQUASHED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../migrations/postgres/0001_init.sql"
);

fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A schema name unique to this process and call (`t_` so that `scripts/ensure-postgres.sh`
/// removes it if a failed run leaves it behind).
fn unique_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_squash_{tag}_{}_{nanos}", std::process::id())
}

/// Runs one statement (or several, in the simple query protocol) built by this test.
async fn execute(conn: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The migration files of the chain before the squash, in order.
fn old_chain() -> Vec<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postgres-before-squash");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read fixture directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files
}

/// What one object of a schema looks like in the catalogs: `(owner, fact)`, where the owner is
/// the table or function the fact belongs to, and every mention of the schema's name reads
/// `<schema>`.
type Facts = BTreeSet<(String, String)>;

/// A column as the catalogs describe it.
#[derive(sqlx::FromRow)]
struct ColumnRow {
    table_name: String,
    position: i16,
    name: String,
    type_name: String,
    default_value: Option<String>,
    not_null: bool,
    identity: String,
    generated: String,
}

async fn catalog_facts(conn: &mut PgConnection, schema: &str) -> Facts {
    let normalize = |text: String| {
        text.replace(&format!("\"{schema}\"."), "<schema>.")
            .replace(&format!("{schema}."), "<schema>.")
    };
    let mut facts = Facts::new();

    // Tables, sequences and views, with their storage options (the autovacuum settings).
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text, coalesce(c.reloptions, '{}')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind NOT IN ('i', 'I', 'c', 't')",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read relations");
    for (name, kind, options) in rows {
        let fact = format!("relation {name}: kind {kind}, options {options:?}");
        facts.insert((name, fact));
    }

    // Sequences' parameters.
    let rows: Vec<(String, String, i64, i64, i64, i64, bool)> = sqlx::query_as(
        "SELECT sequencename::text, data_type::text, start_value, min_value, max_value,
                increment_by, cycle
         FROM pg_sequences WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read sequences");
    for (name, ty, start, min, max, increment, cycle) in rows {
        let fact = format!(
            "sequence {name}: {ty} start {start} min {min} max {max} increment {increment} \
             cycle {cycle}"
        );
        facts.insert((name, fact));
    }

    // Columns, in order: type, default, nullability.
    let rows: Vec<ColumnRow> = sqlx::query_as(
        "SELECT c.relname::text AS table_name, a.attnum AS position, a.attname::text AS name,
                format_type(a.atttypid, a.atttypmod) AS type_name,
                pg_get_expr(d.adbin, d.adrelid) AS default_value, a.attnotnull AS not_null,
                a.attidentity::text AS identity, a.attgenerated::text AS generated
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm')
           AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read columns");
    for c in rows {
        let fact = normalize(format!(
            "column {}.{} (#{}): {}, default {:?}, not null {}, identity {:?}, generated {:?}",
            c.table_name,
            c.name,
            c.position,
            c.type_name,
            c.default_value,
            c.not_null,
            c.identity,
            c.generated
        ));
        facts.insert((c.table_name, fact));
    }

    // Constraints.
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, con.conname::text, con.contype::text,
                pg_get_constraintdef(con.oid)
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = con.connamespace
         WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read constraints");
    for (table, name, kind, definition) in rows {
        let fact = normalize(format!("constraint {table}.{name} ({kind}): {definition}"));
        facts.insert((table, fact));
    }

    // Indexes (the definition includes storage options).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, pg_get_indexdef(x.indexrelid)
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = i.relnamespace
         WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read indexes");
    for (table, name, definition) in rows {
        let fact = normalize(format!("index {name}: {definition}"));
        facts.insert((table, fact));
    }

    // Functions, whole (arguments, result, body, language and settings).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT p.proname::text, pg_get_function_identity_arguments(p.oid),
                pg_get_functiondef(p.oid)
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("read functions");
    for (name, arguments, definition) in rows {
        let fact = normalize(format!("function {name}({arguments}):\n{definition}"));
        facts.insert((name, fact));
    }
    facts
}

/// The owners of the facts given.
fn owners<'a>(facts: impl IntoIterator<Item = &'a (String, String)>) -> BTreeSet<&'a str> {
    facts.into_iter().map(|(owner, _)| owner.as_str()).collect()
}

#[tokio::test]
async fn the_squashed_postgres_migration_builds_the_schema_of_the_old_chain() {
    let url = postgres_url();
    let mut conn = match PgConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but {url} failed: {e}");
            }
            eprintln!(
                "\n!!!! SKIPPING the migration squash test: {url} is not reachable ({e}).\n\
                 !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
            );
            return;
        }
    };
    let old = unique_schema("old");
    let new = unique_schema("new");

    // The old chain, file by file, as plain SQL in the old schema.
    execute(&mut conn, format!("CREATE SCHEMA \"{old}\"")).await;
    execute(&mut conn, format!("SET search_path TO \"{old}\"")).await;
    let files = old_chain();
    assert_eq!(files.len(), 5, "the chain before the squash: {files:?}");
    for file in &files {
        let sql =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        execute(&mut conn, sql).await;
    }
    // The squashed migration, the same way, in the new schema.
    execute(&mut conn, format!("CREATE SCHEMA \"{new}\"")).await;
    execute(&mut conn, format!("SET search_path TO \"{new}\"")).await;
    let sql = std::fs::read_to_string(SQUASHED).unwrap_or_else(|e| panic!("{SQUASHED}: {e}"));
    execute(&mut conn, sql).await;
    // Read both catalogs with neither schema on the search path, so that names in both come
    // out qualified alike.
    execute(&mut conn, "RESET search_path".to_string()).await;

    let old_facts = catalog_facts(&mut conn, &old).await;
    let new_facts = catalog_facts(&mut conn, &new).await;
    execute(&mut conn, format!("DROP SCHEMA \"{old}\" CASCADE")).await;
    execute(&mut conn, format!("DROP SCHEMA \"{new}\" CASCADE")).await;
    let _ = conn.close().await;

    for facts in [&old_facts, &new_facts] {
        let owners = owners(facts.iter());
        for expected in [
            "underling_jobs",
            "underling_job_deps",
            "underling_queues",
            "underling_workers",
            "underling_worker_inbox",
            "underling_locks",
            "underling_lock",
            "underling_claim_v2",
            "underling_settle_and_claim_v2",
        ] {
            assert!(
                owners.contains(expected),
                "{expected} is missing: {owners:?}"
            );
        }
    }
    let only_old: Vec<&(String, String)> = old_facts.difference(&new_facts).collect();
    let only_new: Vec<&(String, String)> = new_facts.difference(&old_facts).collect();
    assert_eq!(
        owners(only_old.iter().copied()),
        BTreeSet::from(DROPPED_FUNCTIONS),
        "only the two dropped functions may differ; the old chain alone has:\n{only_old:#?}"
    );
    assert!(
        only_new.is_empty(),
        "the squashed migration alone has:\n{only_new:#?}"
    );
    let new_owners = owners(new_facts.iter());
    for dropped in DROPPED_FUNCTIONS {
        assert!(!new_owners.contains(dropped), "{dropped} is still created");
    }
}
