-- Leases for pull workers (see the PostgreSQL migration of the same number): a job claimed
-- with a lease is active with no worker until `lease_expires` (milliseconds since the epoch).
ALTER TABLE underling_jobs ADD COLUMN lease_expires INTEGER;

-- The leases that run out: only leased jobs are in it (native claims set a worker).
CREATE INDEX IF NOT EXISTS underling_jobs_leases
    ON underling_jobs (lease_expires) WHERE state = 'active' AND worker_id IS NULL;
