-- Leases for pull workers (`Queue::claim_leased`, `POST /api/v1/claims`): a job claimed with a
-- lease is active with no worker (`worker_id` NULL) until `lease_expires`. Its holder settles
-- it with the lease's attempt (ack, reject) or renews the lease (extend) before then; after it,
-- the lease is lost and the job is rescued like a dead worker's job (failed, and retried after
-- the backoff where tries are left). Repair's rescue of jobs whose worker is gone leaves
-- leased jobs alone (sql/repair_abandoned.sql).
--
-- A nullable column without a default is added without rewriting the table, and the claims,
-- enqueues and settles of workers never write it.
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS lease_expires TIMESTAMPTZ;

-- The leases that run out: only leased jobs are in it (native claims set a worker).
CREATE INDEX IF NOT EXISTS underling_jobs_leases
    ON underling_jobs (lease_expires) WHERE state = 'active' AND worker_id IS NULL;

-- Claims up to `lim` ready jobs of the queues (and tasks, when not empty) with a lease of
-- `lease_secs` from `at`, in one round trip: the workers' claim (underling_claim, the same
-- readiness rule and order) for no worker, then the lease on the rows it claimed.
CREATE OR REPLACE FUNCTION underling_claim_leased(
    claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, lease_secs DOUBLE PRECISION,
    at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB, lease_expires TIMESTAMPTZ) AS $$
#variable_conflict use_column
DECLARE
    claimed BIGINT[];
BEGIN
    at := COALESCE(at, now());
    claimed := ARRAY(SELECT c.id FROM underling_claim(NULL, claim_queues, claim_tasks, lim, at) c);
    RETURN QUERY
    UPDATE underling_jobs AS j SET lease_expires = at + make_interval(secs => lease_secs)
    WHERE j.id = ANY(claimed)
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes, j.lease_expires;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
