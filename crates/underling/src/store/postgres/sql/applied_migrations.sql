-- The migrations applied, or no row at all when there is no migrations table.
SELECT version FROM underling_migrations WHERE success ORDER BY version
