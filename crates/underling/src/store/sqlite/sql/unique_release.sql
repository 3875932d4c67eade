-- A job that no longer holds its unique key gives it up, so that a new job may take it.
UPDATE underling_jobs SET unique_key = NULL WHERE id = ?1
