-- The store's second shape: one statement of the readiness rule, `now` passed in, and the
-- functions that may run on connections the library does not own naming their schema.
--
-- Every function here is created with `SET search_path FROM CURRENT` (the migration runs with
-- the store's schema on the search path), so that it finds the store's tables whatever the
-- search path of the connection that calls it: an application's own transaction enqueues into
-- the right schema. The exception is underling_ready, which must stay inlinable.

DROP FUNCTION IF EXISTS underling_settle_and_claim_v2(BIGINT[], INTEGER[], BOOLEAN[], JSONB[],
    DOUBLE PRECISION[], TEXT, BIGINT, TEXT[], TEXT[], INTEGER);
DROP FUNCTION IF EXISTS underling_claim_v2(BIGINT, TEXT[], TEXT[], INTEGER);
DROP FUNCTION IF EXISTS underling_lock(TEXT, DOUBLE PRECISION, INTEGER);

-- THE EXPIRY RULE: from its expiry time on, an inactive job is gone for every reader (it is
-- not listed, shown or counted, and no longer blocks its children), whether or not repair has
-- deleted it yet. A plain SQL expression, so that the planner inlines it.
CREATE FUNCTION underling_gone(j underling_jobs, at TIMESTAMPTZ) RETURNS BOOLEAN AS $$
    SELECT j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= at
$$ LANGUAGE sql STABLE;

-- Whether every parent of a job has finished at `at` (with `lax`, also when one failed); a
-- removed or expired parent counts as done. PL/pgSQL so that its plan is cached per session.
CREATE FUNCTION underling_parents_done(child BIGINT, child_lax BOOLEAN, at TIMESTAMPTZ)
RETURNS BOOLEAN AS $$
BEGIN
    RETURN NOT EXISTS (
        SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id
        WHERE d.child_id = child AND p.state <> 'finished' AND NOT (child_lax AND p.state = 'failed')
          AND NOT underling_gone(p, at));
END;
$$ LANGUAGE plpgsql STABLE SET search_path FROM CURRENT;

-- THE READINESS RULE: a job may be claimed at `at` when it is inactive, due, not expired and
-- its parents are done. A plain SQL expression, so that the planner inlines it into the claim
-- and still walks the ready index (a function call per row would cost 4 µs each).
CREATE FUNCTION underling_ready(c underling_jobs, at TIMESTAMPTZ) RETURNS BOOLEAN AS $$
    SELECT c.state = 'inactive' AND c.delayed <= at AND (c.expires IS NULL OR c.expires > at)
       AND (NOT c.has_parents OR underling_parents_done(c.id, c.lax, at))
$$ LANGUAGE sql STABLE;

-- Claims up to `lim` ready jobs of the queues (and tasks, when given) for a worker, in
-- priority then id order, skipping rows other claims hold.
--
-- A queue table's statistics are nearly always stale, and with them the planner may read
-- every ready job through a bitmap scan and sort them, or claim by a sequential scan joined to
-- the locked rows. Walking the ready index in claim order and stopping after `lim` rows is
-- always right here, so sequential scans, hash and merge joins, materialization, sorts, bitmap
-- scans and JIT are switched off for this function alone.
CREATE FUNCTION underling_claim(
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB) AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE underling_jobs AS j SET state = 'active', started = at, worker_id = claim_worker
    FROM (
        SELECT c.id FROM underling_jobs c
        WHERE c.state = 'inactive' AND c.queue = ANY(claim_queues)
          AND (cardinality(claim_tasks) = 0 OR c.task = ANY(claim_tasks))
          AND c.queue <> ALL (ARRAY(SELECT q.name FROM underling_queues q WHERE q.paused))
          AND underling_ready(c, at)
        ORDER BY c.priority DESC, c.id
        LIMIT lim
        FOR UPDATE SKIP LOCKED) AS picked
    WHERE j.id = picked.id
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;

-- A worker's cycle: settles attempts that ended, then claims new jobs, in one call (one round
-- trip and one commit).
--
-- THE RETRY TRANSITION: a failed attempt with tries left goes back to inactive as the next
-- attempt, due after its delay; without tries left the job has failed. An attempt whose job
-- was retried, rescued or removed meanwhile (retries or state no longer match) changes
-- nothing and does not come back. Settled jobs come back as their id and new state only;
-- claimed jobs come back active and whole. Workers are woken for the children of jobs that
-- ended. Repair settles the attempts of workers that went away through this function too.
CREATE FUNCTION underling_cycle(
    s_ids BIGINT[], s_retries INTEGER[], s_ok BOOLEAN[], s_results JSONB[], s_delays DOUBLE PRECISION[],
    wake_channel TEXT,
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB) AS $$
#variable_conflict use_column
DECLARE
    -- Compared through a variable, the state cannot match the predicate of the partial index
    -- on active jobs, so the planner cannot pick that index (and read every active job).
    active TEXT := 'active';
BEGIN
    at := COALESCE(at, now());
    IF cardinality(s_ids) > 0 THEN
        RETURN QUERY
        WITH i AS (
            SELECT * FROM unnest(s_ids, s_retries, s_ok, s_results, s_delays)
                AS u(id, retries, ok, result, delay)
        ), upd AS (
            UPDATE underling_jobs AS j SET
                state = CASE WHEN i.ok THEN 'finished'
                             WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END,
                finished = at,
                result = i.result,
                retries = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN j.retries + 1 ELSE j.retries END,
                retried = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN at ELSE j.retried END,
                delayed = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN at + make_interval(secs => i.delay) ELSE j.delayed END
            FROM i
            WHERE j.id = i.id AND j.retries = i.retries AND j.state = active
            RETURNING j.id, j.state
        ), wake AS (
            -- From the ended jobs to their children, each child by primary key.
            SELECT pg_notify(wake_channel, s.queue) FROM (
                SELECT DISTINCT (SELECT c.queue FROM underling_jobs c
                                 WHERE c.id = d.child_id AND c.state = 'inactive') AS queue
                FROM upd JOIN underling_job_deps d ON d.parent_id = upd.id
                WHERE upd.state IN ('finished', 'failed')
                  AND EXISTS (SELECT 1 FROM underling_job_deps)) s
            WHERE s.queue IS NOT NULL
        )
        SELECT upd.id, NULL::TEXT, NULL::TEXT, NULL::JSONB, upd.state, NULL::INTEGER,
               NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ,
               NULL::BOOLEAN, NULL::BIGINT, NULL::JSONB, NULL::JSONB
        FROM upd WHERE (SELECT count(*) FROM wake) >= 0;
    END IF;
    IF lim > 0 THEN
        -- A new snapshot: children released just above can be claimed right away.
        RETURN QUERY SELECT * FROM underling_claim(claim_worker, claim_queues, claim_tasks, lim, at);
    END IF;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;

-- The first of `parents` that is not a job, or NULL.
CREATE FUNCTION underling_missing_parent(parents BIGINT[]) RETURNS BIGINT AS $$
BEGIN
    RETURN (SELECT p FROM unnest(parents) AS p
            WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p) ORDER BY p LIMIT 1);
END;
$$ LANGUAGE plpgsql STABLE SET search_path FROM CURRENT;

-- Inserts many jobs and their dependencies in one statement and wakes the workers of the
-- queues that got jobs without parents (due now, or later: an idle worker then learns when
-- the next one falls due); returns the new ids in input order (they are drawn in input
-- order). Parents must have been checked with underling_missing_parent in the same
-- transaction.
CREATE FUNCTION underling_enqueue_jobs(
    tasks TEXT[], argss JSONB[], queues TEXT[], priorities INTEGER[], attemptss INTEGER[],
    delays DOUBLE PRECISION[], run_ats TIMESTAMPTZ[], expire_secs DOUBLE PRECISION[],
    laxes BOOLEAN[], has_parentss BOOLEAN[], notess JSONB[],
    dep_ord BIGINT[], dep_parent BIGINT[], wake_channel TEXT, at TIMESTAMPTZ)
RETURNS TABLE (id BIGINT) AS $$
#variable_conflict use_column
BEGIN
    at := COALESCE(at, now());
    RETURN QUERY
    WITH ins AS (
        INSERT INTO underling_jobs
            (task, args, queue, priority, attempts, created, delayed, expires, lax, has_parents, notes)
        SELECT t, a, q, p, att, at,
               COALESCE(ra, at + make_interval(secs => COALESCE(d, 0))),
               CASE WHEN e IS NULL THEN NULL ELSE at + make_interval(secs => e) END,
               l, hp, n
        FROM unnest(tasks, argss, queues, priorities, attemptss, delays, run_ats, expire_secs,
                    laxes, has_parentss, notess)
             WITH ORDINALITY AS u(t, a, q, p, att, d, ra, e, l, hp, n, ord)
        ORDER BY ord
        RETURNING underling_jobs.id, underling_jobs.queue, underling_jobs.delayed,
                  underling_jobs.has_parents
    ), numbered AS (
        SELECT ins.id, row_number() OVER (ORDER BY ins.id) AS ord FROM ins
    ), deps AS (
        INSERT INTO underling_job_deps (child_id, parent_id)
        SELECT n.id, dp.parent FROM numbered n
        JOIN unnest(dep_ord, dep_parent) AS dp(ord, parent) ON dp.ord = n.ord
        ON CONFLICT DO NOTHING
    ), wake AS (
        SELECT pg_notify(wake_channel, s.queue) FROM (SELECT DISTINCT ins.queue FROM ins
            WHERE wake_channel IS NOT NULL AND NOT ins.has_parents) s
    )
    SELECT ins.id FROM ins WHERE (SELECT count(*) FROM wake) >= 0 ORDER BY ins.id;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;

-- Takes a hold on a named, shared lock unless `lock_limit` holds are live at `at`. A zero or
-- negative duration only checks. One call is one statement, serialized per name by an
-- advisory lock.
CREATE FUNCTION underling_lock(lock_name TEXT, duration_secs DOUBLE PRECISION, lock_limit INTEGER,
                               at TIMESTAMPTZ)
RETURNS BOOLEAN AS $$
DECLARE
    new_expires TIMESTAMPTZ := at + make_interval(secs => duration_secs);
BEGIN
    PERFORM pg_advisory_xact_lock(1970170216, hashtext(lock_name));
    DELETE FROM underling_locks WHERE name = lock_name AND expires <= at;
    IF (SELECT count(*) >= lock_limit FROM underling_locks WHERE name = lock_name) THEN
        RETURN false;
    END IF;
    IF new_expires > at THEN
        INSERT INTO underling_locks (name, expires) VALUES (lock_name, new_expires);
    END IF;
    RETURN true;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
