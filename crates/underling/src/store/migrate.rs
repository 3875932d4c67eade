//! Migration bookkeeping shared by both stores.

use crate::error::{Error, Result};
use crate::model::AppliedMigration;

/// Our own migrations table, not sqlx's default, so that it does not collide with the host
/// application's.
pub(crate) const MIGRATIONS_TABLE: &str = "underling_migrations";

/// A copy of an embedded migrator that records into [`MIGRATIONS_TABLE`].
pub(crate) fn migrator(embedded: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate::Migrator {
        migrations: embedded.migrations.clone(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// The migrations of `embedded` that are not in `before` (the versions applied earlier).
pub(crate) fn newly_applied(
    embedded: &sqlx::migrate::Migrator,
    before: &[i64],
) -> Vec<AppliedMigration> {
    embedded
        .iter()
        .filter(|m| !before.contains(&m.version))
        .map(|m| AppliedMigration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect()
}

/// Fails with [`Error::NotMigrated`] unless every migration of `embedded` is among `applied`
/// (`None`: no migrations table at all).
pub(crate) fn check_applied(
    embedded: &sqlx::migrate::Migrator,
    applied: Option<Vec<i64>>,
) -> Result<()> {
    let Some(applied) = applied else {
        return Err(Error::NotMigrated("no underling tables were found".into()));
    };
    let missing: Vec<String> = newly_applied(embedded, &applied)
        .into_iter()
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotMigrated(format!(
            "migrations not applied: {}",
            missing.join(", ")
        )))
    }
}
