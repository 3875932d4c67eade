-- Unique jobs: at most one live job per unique key.
--
-- A unique job carries its key on its own row, with its scope: `inactive` (the key is held
-- while the job is inactive), `active` (while inactive or active) or `period` (until
-- `unique_until`, whatever the state). A partial unique index on the key makes the database
-- refuse a second row with a key, so that concurrent enqueuers cannot both insert: the loser
-- of the race finds the winner's row (INSERT ... ON CONFLICT waits for the winner to commit).
--
-- A job that leaves its scope keeps its key on the row until an enqueue with the same key
-- finds it there, sees that it is no longer live, clears it and inserts: the claim, the
-- settles and repair never touch keys, so jobs without keys and the hot paths pay nothing.
-- Whether a holder is live depends only on its own columns and `at`, read on the locked row.

ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS unique_key TEXT;
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS unique_scope TEXT
    CHECK (unique_scope IN ('inactive', 'active', 'period'));
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS unique_until TIMESTAMPTZ;
-- See "Per-job timeouts and snoozes" below.
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS timeout_ms BIGINT;
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS snoozes INTEGER NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX IF NOT EXISTS underling_jobs_unique_key
    ON underling_jobs (unique_key) WHERE unique_key IS NOT NULL;

-- THE UNIQUENESS RULE: whether job `j` still holds its unique key at `at`. An inactive job
-- past its expiry is gone (underling_gone) and holds nothing.
CREATE FUNCTION underling_holds_key(j underling_jobs, at TIMESTAMPTZ) RETURNS BOOLEAN AS $$
    SELECT j.unique_key IS NOT NULL AND NOT underling_gone(j, at) AND CASE j.unique_scope
        WHEN 'inactive' THEN j.state = 'inactive'
        WHEN 'active' THEN j.state IN ('inactive', 'active')
        ELSE j.unique_until > at END
$$ LANGUAGE sql STABLE;

-- Inserts jobs one by one in input order (ids drawn in that order), each with its unique key
-- where it has one, and returns for each input row its id and what happened: `inserted`,
-- `existing` (a live job holds the key: its id) or `replaced` (that job was inactive and took
-- this row's args, priority and due time). A job whose key a live job holds under the policy
-- `error` raises SQLSTATE UL001 with the key as message and the holder's id as detail, so
-- that the whole statement writes nothing. Dependencies are written for inserted jobs; the
-- parents must have been checked with underling_missing_parent in the same transaction.
-- Workers of the queues that got a due job without parents are woken.
CREATE FUNCTION underling_enqueue_unique(
    tasks TEXT[], argss JSONB[], queues TEXT[], priorities INTEGER[], attemptss INTEGER[],
    delays DOUBLE PRECISION[], run_ats TIMESTAMPTZ[], expire_secs DOUBLE PRECISION[],
    laxes BOOLEAN[], has_parentss BOOLEAN[], notess JSONB[],
    dep_ord BIGINT[], dep_parent BIGINT[], wake_channel TEXT, at TIMESTAMPTZ,
    ukeys TEXT[], uscopes TEXT[], ufors DOUBLE PRECISION[], upolicies TEXT[], timeouts BIGINT[])
RETURNS TABLE (id BIGINT, outcome TEXT) AS $$
#variable_conflict use_column
DECLARE
    n INTEGER := cardinality(tasks);
    ids BIGINT[] := '{}';
    outcomes TEXT[] := '{}';
    due TIMESTAMPTZ;
    new_id BIGINT;
    holder underling_jobs;
    result TEXT;
    woken TEXT[] := '{}';
BEGIN
    at := COALESCE(at, now());
    FOR i IN 1 .. COALESCE(n, 0) LOOP
        due := COALESCE(run_ats[i], at + make_interval(secs => COALESCE(delays[i], 0)));
        result := NULL;
        -- At most a few rounds: each one that finds no live holder has cleared a stale key or
        -- seen the holder vanish, and the next insert then wins or meets a new live holder.
        FOR round IN 1 .. 10 LOOP
            new_id := NULL;
            INSERT INTO underling_jobs AS j
                (task, args, queue, priority, attempts, created, delayed, expires, lax,
                 has_parents, notes, unique_key, unique_scope, unique_until, timeout_ms)
            VALUES (tasks[i], argss[i], queues[i], priorities[i], attemptss[i], at, due,
                    CASE WHEN expire_secs[i] IS NULL THEN NULL
                         ELSE at + make_interval(secs => expire_secs[i]) END,
                    laxes[i], has_parentss[i], notess[i], ukeys[i], uscopes[i],
                    CASE WHEN ufors[i] IS NULL THEN NULL ELSE at + make_interval(secs => ufors[i]) END,
                    timeouts[i])
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            RETURNING j.id INTO new_id;
            IF new_id IS NOT NULL THEN
                result := 'inserted';
                EXIT;
            END IF;
            -- A job holds the key (committed, or written earlier in this transaction): a new
            -- snapshot sees it. Lock it, so that its state cannot change while we decide.
            SELECT * INTO holder FROM underling_jobs j WHERE j.unique_key = ukeys[i] FOR UPDATE;
            CONTINUE WHEN NOT FOUND;
            IF NOT underling_holds_key(holder, at) THEN
                UPDATE underling_jobs j SET unique_key = NULL WHERE j.id = holder.id;
                CONTINUE;
            END IF;
            new_id := holder.id;
            IF upolicies[i] = 'error' THEN
                RAISE EXCEPTION USING ERRCODE = 'UL001', MESSAGE = ukeys[i], DETAIL = holder.id::TEXT;
            ELSIF upolicies[i] = 'replace' AND holder.state = 'inactive' THEN
                UPDATE underling_jobs j SET args = argss[i], priority = priorities[i], delayed = due
                WHERE j.id = holder.id;
                result := 'replaced';
                IF NOT holder.has_parents THEN
                    woken := woken || holder.queue;
                END IF;
            ELSE
                result := 'existing';
            END IF;
            EXIT;
        END LOOP;
        IF result IS NULL THEN
            RAISE EXCEPTION 'unique key % changed hands too often to enqueue', ukeys[i];
        END IF;
        ids := ids || new_id;
        outcomes := outcomes || result;
        IF result = 'inserted' THEN
            INSERT INTO underling_job_deps (child_id, parent_id)
            SELECT new_id, dp.parent FROM unnest(dep_ord, dep_parent) AS dp(ord, parent)
            WHERE dp.ord = i
            ON CONFLICT DO NOTHING;
            IF NOT has_parentss[i] THEN
                woken := woken || queues[i];
            END IF;
        END IF;
    END LOOP;
    IF wake_channel IS NOT NULL THEN
        PERFORM pg_notify(wake_channel, q) FROM (SELECT DISTINCT unnest(woken) AS q) w;
    END IF;
    RETURN QUERY SELECT u.id, u.outcome FROM unnest(ids, outcomes) WITH ORDINALITY AS u(id, outcome, ord)
        ORDER BY u.ord;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;

-- Per-job timeouts and snoozes.
--
-- `timeout_ms`: the job's own timeout (NULL: its task's), enforced by the worker that runs it
-- and, as a backstop for a task that hangs on a live worker, by repair (underling_timed_out).
-- `snoozes`: how many times the job was snoozed. A snooze puts the job back to inactive after a
-- delay without using an attempt: like a failed attempt with tries left it is a new attempt
-- (retries + 1, so that the settle guard of the snoozed attempt no longer matches), and it
-- gives the job one more attempt to make up for it (attempts + 1).

-- underling_claim of 0004 returning the job's timeout and snoozes too. The old functions stay
-- for the workers of the previous release while they are upgraded.
CREATE FUNCTION underling_claim_jobs(
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB, timeout_ms BIGINT,
    snoozes INTEGER) AS $$
#variable_conflict use_column
BEGIN
    UPDATE underling_jobs AS j SET promoted = j.delayed
    FROM (SELECT DISTINCT q.name FROM unnest(claim_queues) AS q(name)) AS q
    CROSS JOIN LATERAL (
        SELECT c.id FROM underling_jobs c
        WHERE c.queue = q.name AND c.state = 'inactive'
          AND c.delayed > GREATEST(c.created, c.retried, c.promoted) AND c.delayed <= at
        ORDER BY c.delayed
        LIMIT 1000
        FOR UPDATE SKIP LOCKED) AS due
    WHERE j.id = due.id;

    RETURN QUERY
    UPDATE underling_jobs AS j SET state = 'active', started = at, worker_id = claim_worker
    FROM (
        SELECT p.id FROM (SELECT DISTINCT q.name FROM unnest(claim_queues) AS q(name)) AS q
        CROSS JOIN LATERAL (
            SELECT c.id, c.priority FROM underling_jobs c
            WHERE c.queue = q.name AND c.state = 'inactive'
              AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
              AND (cardinality(claim_tasks) = 0 OR c.task = ANY(claim_tasks))
              AND underling_ready(c, at)
            ORDER BY c.priority DESC, c.id
            LIMIT lim
            FOR UPDATE SKIP LOCKED) AS p
        WHERE NOT EXISTS (SELECT 1 FROM underling_queues pq WHERE pq.name = q.name AND pq.paused)
        ORDER BY p.priority DESC, p.id
        LIMIT lim) AS picked
    WHERE j.id = picked.id
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes, j.timeout_ms, j.snoozes;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;

-- underling_cycle of 0007 with snoozes (s_snooze: the attempt asked to run again after
-- s_delays, without using an attempt) and the claim above. A snooze is not a failed attempt:
-- the history does not count it.
CREATE FUNCTION underling_work_cycle(
    s_ids BIGINT[], s_retries INTEGER[], s_ok BOOLEAN[], s_snooze BOOLEAN[], s_results JSONB[],
    s_delays DOUBLE PRECISION[], wake_channel TEXT,
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB, timeout_ms BIGINT,
    snoozes INTEGER) AS $$
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
            SELECT * FROM unnest(s_ids, s_retries, s_ok, s_snooze, s_results, s_delays)
                AS u(id, retries, ok, snooze, result, delay)
        ), upd AS (
            UPDATE underling_jobs AS j SET
                state = CASE WHEN i.ok THEN 'finished'
                             WHEN i.snooze OR j.retries + 1 < j.attempts THEN 'inactive'
                             ELSE 'failed' END,
                finished = at,
                result = i.result,
                retries = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                               THEN j.retries + 1 ELSE j.retries END,
                attempts = CASE WHEN i.snooze THEN j.attempts + 1 ELSE j.attempts END,
                snoozes = CASE WHEN i.snooze THEN j.snoozes + 1 ELSE j.snoozes END,
                retried = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                               THEN at ELSE j.retried END,
                delayed = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                               THEN at + make_interval(secs => i.delay) ELSE j.delayed END
            FROM i
            WHERE j.id = i.id AND j.retries = i.retries AND j.state = active
            RETURNING j.id, j.state, i.snooze
        ), counted AS (
            -- History: what the settles did this hour, on this session's shard of the hour.
            INSERT INTO underling_history AS h (hour, shard, finished, failed, failed_attempts)
            SELECT date_trunc('hour', at, 'UTC'), pg_backend_pid() % 16,
                   count(*) FILTER (WHERE upd.state = 'finished'),
                   count(*) FILTER (WHERE upd.state = 'failed'),
                   count(*) FILTER (WHERE upd.state <> 'finished' AND NOT upd.snooze)
            FROM upd HAVING count(*) FILTER (WHERE NOT upd.snooze) > 0
            ON CONFLICT (hour, shard) DO UPDATE SET
                finished = h.finished + EXCLUDED.finished,
                failed = h.failed + EXCLUDED.failed,
                failed_attempts = h.failed_attempts + EXCLUDED.failed_attempts
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
               NULL::BOOLEAN, NULL::BIGINT, NULL::JSONB, NULL::JSONB, NULL::BIGINT, NULL::INTEGER
        FROM upd WHERE (SELECT count(*) FROM wake) >= 0;
    END IF;
    IF lim > 0 THEN
        -- A new snapshot: children released just above can be claimed right away.
        RETURN QUERY SELECT * FROM underling_claim_jobs(claim_worker, claim_queues, claim_tasks, lim, at);
    END IF;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;

-- A snooze is an event of its own: the event classification of 0008 with `snoozed` first.
CREATE OR REPLACE FUNCTION underling_job_event(o underling_jobs, n underling_jobs)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN o.state = 'active' AND n.state = 'inactive' AND n.snoozes > o.snoozes THEN 'snoozed'
        WHEN o.state = 'active' AND n.state IN ('failed', 'inactive')
             AND n.result = '"Worker went away"'::jsonb THEN 'rescued'
        WHEN o.state = 'inactive' AND n.state = 'active' THEN 'started'
        WHEN o.state = 'active' AND n.state = 'finished' THEN 'finished'
        WHEN o.state = 'active' AND n.state = 'failed' THEN 'failed'
        WHEN n.state = 'inactive' AND (o.state <> 'inactive' OR n.retries <> o.retries)
            THEN 'retried'
        WHEN n.notes IS DISTINCT FROM o.notes THEN 'noted'
        WHEN n.state = 'inactive' AND (n.priority, n.queue, n.delayed, n.attempts)
             IS DISTINCT FROM (o.priority, o.queue, o.delayed, o.attempts) THEN 'retried'
    END
$$;

-- underling_enqueue_jobs of 0002 with each job's timeout (timeouts, in ms; NULL: the task's).
CREATE FUNCTION underling_enqueue_jobs(
    tasks TEXT[], argss JSONB[], queues TEXT[], priorities INTEGER[], attemptss INTEGER[],
    delays DOUBLE PRECISION[], run_ats TIMESTAMPTZ[], expire_secs DOUBLE PRECISION[],
    laxes BOOLEAN[], has_parentss BOOLEAN[], notess JSONB[],
    dep_ord BIGINT[], dep_parent BIGINT[], wake_channel TEXT, at TIMESTAMPTZ, timeouts BIGINT[])
RETURNS TABLE (id BIGINT) AS $$
#variable_conflict use_column
BEGIN
    at := COALESCE(at, now());
    RETURN QUERY
    WITH ins AS (
        INSERT INTO underling_jobs
            (task, args, queue, priority, attempts, created, delayed, expires, lax, has_parents,
             notes, timeout_ms)
        SELECT t, a, q, p, att, at,
               COALESCE(ra, at + make_interval(secs => COALESCE(d, 0))),
               CASE WHEN e IS NULL THEN NULL ELSE at + make_interval(secs => e) END,
               l, hp, n, tm
        FROM unnest(tasks, argss, queues, priorities, attemptss, delays, run_ats, expire_secs,
                    laxes, has_parentss, notess, timeouts)
             WITH ORDINALITY AS u(t, a, q, p, att, d, ra, e, l, hp, n, tm, ord)
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
