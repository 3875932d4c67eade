SELECT version FROM underling_migrations WHERE success ORDER BY version
