-- Exact concurrency and rate limits, enforced inside the claim.
--
-- A limit counts the jobs of a group: of one queue (`queue`, name = the queue), of one task
-- (`task`, name = the task), or of each value of a key read from the job's arguments or notes
-- (`args` / `notes`, name = a dotted path such as `tenant` or `customer.id`: every distinct
-- value is a group of its own, e.g. one per tenant). A job without the key is in no group of
-- that limit. `concurrency`: at most that many jobs of a group active at once (leased ones
-- included, so pull workers count too). `rate_count` per `rate_period_ms`: at most that many
-- starts of a group in any window of that length (a sliding window, exact: the start times
-- of the last starts are kept per group in underling_limit_starts).
--
-- Claims that no limit can concern (no limit exists, or only queue limits of other queues)
-- take the unchanged claim and pay one probe of this small table. The others are serialized
-- by a transaction-level advisory lock, read the active jobs (their count per group) and pick
-- ready jobs in claim order, passing over jobs whose group is full, before claiming the ones
-- picked. Since every claim that could start a job of a limited group holds the lock from
-- before it counts until its commit, the counts it sees are exact: limits are never exceeded,
-- however many workers claim. A job rescued from a dead worker counts as active until the
-- rescue. `Worker::run_foreground` (a run by id) ignores limits, as it ignores pauses.
CREATE TABLE IF NOT EXISTS underling_limits (
    kind TEXT NOT NULL CHECK (kind IN ('queue', 'task', 'args', 'notes')),
    name TEXT NOT NULL,
    concurrency INTEGER CHECK (concurrency > 0),
    rate_count INTEGER CHECK (rate_count > 0),
    rate_period_ms BIGINT CHECK (rate_period_ms > 0),
    PRIMARY KEY (kind, name),
    CHECK (concurrency IS NOT NULL OR rate_count IS NOT NULL),
    CHECK ((rate_count IS NULL) = (rate_period_ms IS NULL))
);

-- Per group with a rate limit: the start times (epoch seconds) of its starts within the last
-- period, at most rate_count of them. Written only by limited claims.
CREATE TABLE IF NOT EXISTS underling_limit_starts (
    grp TEXT PRIMARY KEY,
    starts JSONB NOT NULL
);

-- The groups of a job under `rules`, with each group's limits. Group names are the limit's
-- kind and name, and for keys the value: `queue mail`, `task image.resize`,
-- `args.tenant=acme`.
CREATE FUNCTION underling_limit_groups(q TEXT, t TEXT, a JSONB, n JSONB, rules underling_limits[])
RETURNS TABLE (grp TEXT, concurrency INTEGER, rate_count INTEGER, rate_period_ms BIGINT) AS $$
    SELECT g.grp, r.concurrency, r.rate_count, r.rate_period_ms
    FROM unnest(rules) AS r
    CROSS JOIN LATERAL (SELECT CASE r.kind
        WHEN 'queue' THEN CASE WHEN r.name = q THEN 'queue ' || q END
        WHEN 'task' THEN CASE WHEN r.name = t THEN 'task ' || t END
        WHEN 'args' THEN 'args.' || r.name || '=' || (a #>> string_to_array(r.name, '.'))
        WHEN 'notes' THEN 'notes.' || r.name || '=' || (n #>> string_to_array(r.name, '.'))
    END AS grp) AS g
    WHERE g.grp IS NOT NULL
$$ LANGUAGE sql STABLE;

-- Whether a claim of these queues can concern a limit.
CREATE FUNCTION underling_limited(claim_queues TEXT[]) RETURNS BOOLEAN AS $$
    SELECT EXISTS (SELECT 1 FROM underling_limits l WHERE l.kind <> 'queue' OR l.name = ANY(claim_queues))
$$ LANGUAGE sql STABLE;

-- Picks up to `lim` ready jobs of the queues (and tasks, when given) that the limits let
-- start at `at`, in claim order, and records their starts in the rate windows; returns their
-- ids (the caller claims them in the same transaction). Holds the limits' advisory lock until
-- the transaction ends. Reads ready jobs in pages of growing size (64 or 4 x lim, then 4
-- times more each round), passing over jobs of full groups, and stops when `lim` are picked,
-- the queues have no more ready jobs, or 16,384 jobs were read in one page: jobs further back
-- than that behind full groups wait for a later claim.
CREATE FUNCTION underling_pick_limited(
    claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS BIGINT[] AS $$
#variable_conflict use_column
DECLARE
    rules underling_limits[];
    running JSONB;
    windows JSONB := '{}';
    changed TEXT[] := '{}';
    picked BIGINT[] := '{}';
    page INTEGER := GREATEST(lim * 4, 64);
    seen INTEGER;
    cand RECORD;
    grp_limit RECORD;
    ok BOOLEAN;
    now_s DOUBLE PRECISION := extract(epoch FROM at);
    in_window INTEGER;
BEGIN
    -- One lock for every limited claim of this schema's queue.
    PERFORM pg_advisory_xact_lock(hashtext('underling_limits'), hashtext(current_schema()));
    rules := ARRAY(SELECT l FROM underling_limits l);
    SELECT COALESCE(jsonb_object_agg(u.grp, u.n), '{}') INTO running FROM (
        SELECT g.grp, count(*) AS n FROM underling_jobs j
        CROSS JOIN LATERAL underling_limit_groups(j.queue, j.task, j.args, j.notes, rules) g
        WHERE j.state = 'active' AND g.concurrency IS NOT NULL
        GROUP BY g.grp) u;
    LOOP
        seen := 0;
        FOR cand IN
            SELECT p.id, p.queue, p.task, p.args, p.notes
            FROM (SELECT DISTINCT q.name FROM unnest(claim_queues) AS q(name)) AS q
            CROSS JOIN LATERAL (
                SELECT c.id, c.priority, c.queue, c.task, c.args, c.notes FROM underling_jobs c
                WHERE c.queue = q.name AND c.state = 'inactive'
                  AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
                  AND (cardinality(claim_tasks) = 0 OR c.task = ANY(claim_tasks))
                  AND underling_ready(c, at)
                ORDER BY c.priority DESC, c.id
                LIMIT page) AS p
            WHERE NOT EXISTS (SELECT 1 FROM underling_queues pq WHERE pq.name = q.name AND pq.paused)
            ORDER BY p.priority DESC, p.id
            LIMIT page
        LOOP
            seen := seen + 1;
            CONTINUE WHEN cand.id = ANY(picked);
            ok := TRUE;
            FOR grp_limit IN SELECT * FROM underling_limit_groups(cand.queue, cand.task, cand.args, cand.notes, rules) LOOP
                IF grp_limit.concurrency IS NOT NULL
                   AND COALESCE((running ->> grp_limit.grp)::INTEGER, 0) >= grp_limit.concurrency THEN
                    ok := FALSE;
                    EXIT;
                END IF;
                IF grp_limit.rate_count IS NOT NULL THEN
                    IF NOT windows ? grp_limit.grp THEN
                        windows := windows || jsonb_build_object(grp_limit.grp, COALESCE(
                            (SELECT s.starts FROM underling_limit_starts s WHERE s.grp = grp_limit.grp),
                            '[]'::JSONB));
                    END IF;
                    SELECT count(*) INTO in_window FROM jsonb_array_elements_text(windows -> grp_limit.grp) e
                    WHERE e::DOUBLE PRECISION > now_s - grp_limit.rate_period_ms / 1000.0;
                    IF in_window >= grp_limit.rate_count THEN
                        ok := FALSE;
                        EXIT;
                    END IF;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT ok;
            picked := picked || cand.id;
            FOR grp_limit IN SELECT * FROM underling_limit_groups(cand.queue, cand.task, cand.args, cand.notes, rules) LOOP
                IF grp_limit.concurrency IS NOT NULL THEN
                    running := running || jsonb_build_object(grp_limit.grp,
                        COALESCE((running ->> grp_limit.grp)::INTEGER, 0) + 1);
                END IF;
                IF grp_limit.rate_count IS NOT NULL THEN
                    -- The window keeps the starts within the period, the newest rate_count.
                    windows := windows || jsonb_build_object(grp_limit.grp, (
                        SELECT COALESCE(jsonb_agg(w.s ORDER BY w.s), '[]'::JSONB) FROM (
                            SELECT e::DOUBLE PRECISION AS s
                            FROM jsonb_array_elements_text(windows -> grp_limit.grp) e
                            WHERE e::DOUBLE PRECISION > now_s - grp_limit.rate_period_ms / 1000.0
                            UNION ALL SELECT now_s
                            ORDER BY 1 DESC LIMIT grp_limit.rate_count) w));
                    changed := changed || grp_limit.grp;
                END IF;
            END LOOP;
            EXIT WHEN cardinality(picked) >= lim;
        END LOOP;
        EXIT WHEN cardinality(picked) >= lim OR seen < page OR page >= 16384;
        page := LEAST(page * 4, 16384);
    END LOOP;
    IF cardinality(changed) > 0 THEN
        INSERT INTO underling_limit_starts AS s (grp, starts)
        SELECT DISTINCT ch.grp, windows -> ch.grp FROM unnest(changed) AS ch(grp)
        ON CONFLICT (grp) DO UPDATE SET starts = EXCLUDED.starts;
    END IF;
    RETURN picked;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;

-- underling_claim_jobs of 0010 with the limited path above: the same promotion of due
-- delayed jobs first, then, when a limit can concern these queues, the picked jobs claimed.
CREATE OR REPLACE FUNCTION underling_claim_jobs(
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB, timeout_ms BIGINT,
    snoozes INTEGER) AS $$
#variable_conflict use_column
DECLARE
    limited_ids BIGINT[];
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

    IF underling_limited(claim_queues) THEN
        limited_ids := underling_pick_limited(claim_queues, claim_tasks, lim, at);
        -- The picks were read without row locks (limited claims take turns): a job that
        -- something else changed meanwhile (a run by id, a removal) is left out here.
        RETURN QUERY
        UPDATE underling_jobs AS j SET state = 'active', started = at, worker_id = claim_worker
        WHERE j.id = ANY(limited_ids) AND j.state = 'inactive'
        RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
                  j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
                  j.worker_id, j.result, j.notes, j.timeout_ms, j.snoozes;
        RETURN;
    END IF;

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

-- underling_claim_leased of 0012 on the claim above, so that pull workers' claims obey the
-- limits too.
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
    claimed := ARRAY(SELECT c.id FROM underling_claim_jobs(NULL, claim_queues, claim_tasks, lim, at) c);
    RETURN QUERY
    UPDATE underling_jobs AS j SET lease_expires = at + make_interval(secs => lease_secs)
    WHERE j.id = ANY(claimed)
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes, j.lease_expires;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
