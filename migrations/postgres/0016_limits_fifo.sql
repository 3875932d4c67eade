-- Strict FIFO queues, and the limited pick of 0015 made set-based.
--
-- A FIFO queue (`fifo`) runs one job at a time, in claim order (priority, then id: with one
-- priority, id order), the next only after the previous one settled for good. The job that
-- holds the line (`fifo_holder`) keeps it while it runs and while it waits for a retry
-- (after a failure with attempts left, or a rescue from a dead worker); the line moves on
-- when it finished, failed for good or was removed. A job enters the line when it is ready
-- (its delay passed, its parents finished). Claims of FIFO queues take the limited path
-- below, so they take turns with the other limited claims.
ALTER TABLE underling_queues ADD COLUMN IF NOT EXISTS fifo BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE underling_queues ADD COLUMN IF NOT EXISTS fifo_holder BIGINT;

-- Whether a claim of these queues can concern a limit or a FIFO queue.
CREATE OR REPLACE FUNCTION underling_limited(claim_queues TEXT[]) RETURNS BOOLEAN AS $$
    SELECT EXISTS (SELECT 1 FROM underling_limits l WHERE l.kind <> 'queue' OR l.name = ANY(claim_queues))
        OR EXISTS (SELECT 1 FROM underling_queues q WHERE q.name = ANY(claim_queues) AND q.fifo)
$$ LANGUAGE sql STABLE;

-- The limited pick of 0015, set-based.
--
-- 0015 walked the ready jobs one by one in PL/pgSQL (some 40 µs a job) and, when a claim
-- asked for more jobs than the limits let start (a worker fetching ahead always does), walked
-- on to 16,384 jobs behind the full groups: 700 ms a claim with 20,000 jobs over 100 keys.
-- This pick does the same in a few statements that the executor runs:
--
-- 1. The groups' room: per group with active jobs or recent starts, how many more may start
--    (its concurrency less its active jobs, its rate count less its starts in the window,
--    the lower of the two). Groups without room are full.
-- 2. The candidates: ready jobs in claim order, read by the claim's index and passed over
--    at once when in a full group (an expression per limit, built from the limits as SQL
--    text: `'args.tenant=' || (c.args #>> '{tenant}')`), at most 4 x lim (64 at least) of
--    them, from at most the first 50,000 ready jobs of each queue.
-- 3. The pick: a candidate is picked when, in each of its groups, fewer candidates come
--    before it than the group has room. A candidate passed over in one group still counts in
--    its other groups, so a job in two limited groups may be left for a later claim although
--    it could start (never the reverse: no group gets more than its room). When that may have
--    happened, the pick looks again with the counts updated (at most 4 rounds).
--
-- Exactness is 0015's: limited claims take turns under the same transaction advisory lock,
-- and count the active jobs and the recorded starts after taking it.
--
-- Candidates are capped, not walked to the end: a claim that asks for more jobs than the
-- limits let start stops at the candidates it read rather than scanning the backlog of full
-- groups for more. The jobs of groups with room further back are found by the next claim,
-- since the groups that filled are passed over from then on. What waits behind more than
-- 50,000 ready jobs of full groups in one queue waits for them to start.

-- The SQL expression of a limit's group of job `c`, as text (NULL when the job is in no
-- group of it): `queue mail`, `task image.resize`, `args.tenant=acme`. It replaces 0015's
-- underling_limit_groups, which nothing calls any more.
DROP FUNCTION IF EXISTS underling_limit_groups(TEXT, TEXT, JSONB, JSONB, underling_limits[]);
CREATE FUNCTION underling_limit_group_sql(r underling_limits) RETURNS TEXT AS $$
    SELECT CASE r.kind
        WHEN 'queue' THEN format('CASE WHEN c.queue = %L THEN %L END', r.name, 'queue ' || r.name)
        WHEN 'task' THEN format('CASE WHEN c.task = %L THEN %L END', r.name, 'task ' || r.name)
        WHEN 'args' THEN format('(%L || (c.args #>> %L::TEXT[]))',
            'args.' || r.name || '=', string_to_array(r.name, '.')::TEXT)
        WHEN 'notes' THEN format('(%L || (c.notes #>> %L::TEXT[]))',
            'notes.' || r.name || '=', string_to_array(r.name, '.')::TEXT)
    END
$$ LANGUAGE sql IMMUTABLE;

-- Whether group `grp` is a group of limit `r`.
CREATE FUNCTION underling_limit_owns(r underling_limits, grp TEXT) RETURNS BOOLEAN AS $$
    SELECT CASE r.kind
        WHEN 'queue' THEN grp = 'queue ' || r.name
        WHEN 'task' THEN grp = 'task ' || r.name
        ELSE left(grp, length(r.kind || '.' || r.name || '=')) = r.kind || '.' || r.name || '='
    END
$$ LANGUAGE sql IMMUTABLE;

CREATE OR REPLACE FUNCTION underling_pick_limited(
    claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS BIGINT[] AS $$
#variable_conflict use_column
DECLARE
    rules underling_limits[];
    -- VALUES rows (rule number, group expression, room of a group not seen yet), and for
    -- rate limits (rule number, group expression, rate count, period).
    groups_sql TEXT;
    rate_groups_sql TEXT;
    has_rates BOOLEAN;
    room JSONB;
    full_groups TEXT[];
    picked BIGINT[] := '{}';
    round_picks BIGINT[];
    inexact BOOLEAN;
    seen INTEGER;
    rounds INTEGER := 0;
    now_s DOUBLE PRECISION := extract(epoch FROM at);
    page INTEGER := GREATEST(lim * 4, 64);
    fifo_queues TEXT[];
    fifo_heads BIGINT[] := '{}';
    line RECORD;
    holder_state TEXT;
    head BIGINT;
BEGIN
    -- One lock for every limited claim of this schema's queue.
    PERFORM pg_advisory_xact_lock(hashtext('underling_limits'), hashtext(current_schema()));
    rules := ARRAY(SELECT l FROM underling_limits l ORDER BY l.kind, l.name);
    has_rates := EXISTS (SELECT 1 FROM unnest(rules) r WHERE r.rate_count IS NOT NULL);
    SELECT string_agg(format('(%s, %s, %s)', u.i, underling_limit_group_sql(r.l),
                             LEAST(u.concurrency, u.rate_count)), ', '),
           string_agg(format('(%s, %s, %s, %s)', u.i, underling_limit_group_sql(r.l),
                             u.rate_count, u.rate_period_ms), ', ')
               FILTER (WHERE u.rate_count IS NOT NULL)
      INTO groups_sql, rate_groups_sql
      FROM unnest(rules) WITH ORDINALITY AS u(kind, name, concurrency, rate_count, rate_period_ms, i)
      CROSS JOIN LATERAL (SELECT ROW(u.kind, u.name, u.concurrency, u.rate_count,
                                     u.rate_period_ms)::underling_limits AS l) AS r;
    -- No limit (only FIFO queues concern this claim): no group.
    groups_sql := COALESCE(groups_sql, '(0, NULL::TEXT, 0)');

    -- The FIFO queues of the claim and the job at the head of each line, if it may start:
    -- the holder while it waits for a retry, none while a job of the queue is active, else
    -- the first ready job.
    fifo_queues := ARRAY(SELECT q.name FROM underling_queues q
                         WHERE q.fifo AND q.name = ANY(claim_queues));
    FOR line IN SELECT q.name, q.fifo_holder FROM underling_queues q
                WHERE q.name = ANY(fifo_queues) AND NOT q.paused LOOP
        head := NULL;
        holder_state := NULL;
        IF line.fifo_holder IS NOT NULL THEN
            SELECT j.state INTO holder_state FROM underling_jobs j
            WHERE j.id = line.fifo_holder AND j.queue = line.name;
        END IF;
        IF holder_state = 'inactive' THEN
            head := line.fifo_holder;
        ELSIF NOT EXISTS (
                SELECT 1 FROM underling_jobs j WHERE j.state = 'active' AND j.queue = line.name) THEN
            SELECT c.id INTO head FROM underling_jobs c
            WHERE c.queue = line.name AND c.state = 'inactive'
              AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
              AND underling_ready(c, at)
            ORDER BY c.priority DESC, c.id
            LIMIT 1;
        END IF;
        IF head IS NOT NULL THEN
            fifo_heads := fifo_heads || head;
        END IF;
    END LOOP;

    -- The room of every group with active jobs or starts in its window.
    EXECUTE format($q$
        WITH active AS (
            SELECT x.rule, x.grp, count(*) AS n FROM underling_jobs c
            CROSS JOIN LATERAL (VALUES %s) AS x(rule, grp, fresh)
            WHERE c.state = 'active' AND x.grp IS NOT NULL
            GROUP BY x.rule, x.grp),
        started AS (
            SELECT u.i AS rule, s.grp, (
                SELECT count(*) FROM jsonb_array_elements_text(s.starts) e
                WHERE e::DOUBLE PRECISION > $2 - u.rate_period_ms / 1000.0) AS n
            FROM unnest($1) WITH ORDINALITY AS u(kind, name, concurrency, rate_count, rate_period_ms, i)
            JOIN underling_limit_starts s
              ON underling_limit_owns(ROW(u.kind, u.name, u.concurrency, u.rate_count,
                                          u.rate_period_ms)::underling_limits, s.grp)
            WHERE u.rate_count IS NOT NULL)
        SELECT COALESCE(jsonb_object_agg(g.grp, LEAST(
                   r.concurrency - COALESCE(a.n, 0), r.rate_count - COALESCE(s.n, 0))), '{}')
        FROM (SELECT rule, grp FROM active UNION SELECT rule, grp FROM started) g
        JOIN LATERAL (SELECT * FROM unnest($1) WITH ORDINALITY
                      AS u(kind, name, concurrency, rate_count, rate_period_ms, i)
                      WHERE u.i = g.rule) r ON true
        LEFT JOIN active a ON a.grp = g.grp
        LEFT JOIN started s ON s.grp = g.grp$q$, groups_sql)
    INTO room USING rules, now_s;

    LOOP
        rounds := rounds + 1;
        full_groups := ARRAY(SELECT e.key FROM jsonb_each_text(room) e WHERE e.value::INTEGER <= 0);
        -- The candidates, the pick among them, and whether a candidate was passed over in a
        -- group that it did not fill (the round may have left a job that could start).
        EXECUTE format($q$
            WITH cand AS MATERIALIZED (
                SELECT p.id, p.priority, p.queue, p.task, p.args, p.notes
                FROM (SELECT DISTINCT q.name FROM unnest($1) AS q(name)
                      WHERE q.name <> ALL($9)) AS q
                CROSS JOIN LATERAL (
                    SELECT w.* FROM (
                        SELECT c.id, c.priority, c.queue, c.task, c.args, c.notes
                        FROM underling_jobs c
                        WHERE c.queue = q.name AND c.state = 'inactive'
                          AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
                          AND (cardinality($2) = 0 OR c.task = ANY($2))
                          AND underling_ready(c, $3)
                        ORDER BY c.priority DESC, c.id
                        LIMIT 50000) AS w
                    WHERE w.id <> ALL($4)
                      AND NOT EXISTS (
                          SELECT 1 FROM (SELECT w.queue, w.task, w.args, w.notes) AS c
                          CROSS JOIN LATERAL (VALUES %1$s) AS x(rule, grp, fresh)
                          WHERE x.grp = ANY($5))
                    LIMIT $6) AS p
                WHERE NOT EXISTS (SELECT 1 FROM underling_queues pq WHERE pq.name = q.name AND pq.paused)
                UNION ALL
                SELECT c.id, c.priority, c.queue, c.task, c.args, c.notes
                FROM underling_jobs c
                WHERE c.id = ANY($10) AND c.state = 'inactive'
                  AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
                  AND (cardinality($2) = 0 OR c.task = ANY($2))
                  AND underling_ready(c, $3)
                  AND c.id <> ALL($4)
                ORDER BY 2 DESC, 1
                LIMIT $6),
            ranked AS (
                SELECT c.id, x.grp, COALESCE(($7 ->> x.grp)::INTEGER, x.fresh) AS room,
                       row_number() OVER (PARTITION BY x.grp ORDER BY c.priority DESC, c.id) AS rn
                FROM cand c CROSS JOIN LATERAL (VALUES %1$s) AS x(rule, grp, fresh)
                WHERE x.grp IS NOT NULL),
            blocked AS (
                SELECT r.id, bool_or(r.rn > r.room) AS blocked FROM ranked r GROUP BY r.id),
            pick AS (
                SELECT c.id, c.priority FROM cand c LEFT JOIN blocked b ON b.id = c.id
                WHERE b.blocked IS NOT TRUE
                ORDER BY c.priority DESC, c.id
                LIMIT $8),
            per_group AS (
                SELECT r.grp, min(r.room) AS room, count(p.id) AS picks,
                       bool_or(r.rn > r.room) AS passed_over
                FROM ranked r LEFT JOIN pick p ON p.id = r.id
                GROUP BY r.grp)
            SELECT ARRAY(SELECT p.id FROM pick p ORDER BY p.priority DESC, p.id),
                   EXISTS (SELECT 1 FROM per_group g WHERE g.passed_over AND g.picks < g.room),
                   (SELECT count(*) FROM cand)::INTEGER$q$,
            groups_sql)
        INTO round_picks, inexact, seen
        USING claim_queues, claim_tasks, at, picked, full_groups, page,
              room, lim - cardinality(picked), fifo_queues, fifo_heads;
        picked := picked || round_picks;
        -- Done when enough were picked, or nothing could be, or every candidate was read
        -- and the pick among them was exact. Otherwise the next round passes over the groups
        -- this one filled (and reads on), or counts again where a job was passed over in
        -- one group for another's sake.
        EXIT WHEN cardinality(picked) >= lim OR cardinality(round_picks) = 0
                  OR (seen < page AND NOT inexact) OR rounds >= 4;
        -- Count the round's picks against their groups' room.
        EXECUTE format($q$
            SELECT $1 || COALESCE(jsonb_object_agg(g.grp, g.left_over), '{}') FROM (
                SELECT x.grp, COALESCE(($1 ->> x.grp)::INTEGER, min(x.fresh)) - count(*) AS left_over
                FROM underling_jobs c CROSS JOIN LATERAL (VALUES %s) AS x(rule, grp, fresh)
                WHERE c.id = ANY($2) AND x.grp IS NOT NULL
                GROUP BY x.grp) g$q$, groups_sql)
        INTO room USING room, round_picks;
    END LOOP;

    -- A FIFO queue's pick holds its line.
    IF cardinality(fifo_heads) > 0 THEN
        UPDATE underling_queues q SET fifo_holder = j.id
        FROM underling_jobs j
        WHERE j.id = ANY(picked) AND j.id = ANY(fifo_heads) AND q.name = j.queue;
    END IF;

    -- Record the picks' starts in their rate windows (the newest rate_count within the period).
    IF has_rates AND cardinality(picked) > 0 THEN
        EXECUTE format($q$
            INSERT INTO underling_limit_starts AS s (grp, starts)
            SELECT n.grp, (
                SELECT COALESCE(jsonb_agg(w.t ORDER BY w.t), '[]'::JSONB) FROM (
                    SELECT t FROM (
                        SELECT e::DOUBLE PRECISION AS t
                        FROM jsonb_array_elements_text(COALESCE(
                            (SELECT o.starts FROM underling_limit_starts o WHERE o.grp = n.grp),
                            '[]'::JSONB)) e
                        WHERE e::DOUBLE PRECISION > $2 - n.period / 1000.0
                        UNION ALL SELECT $2 FROM generate_series(1, n.picks)) AS u
                    ORDER BY t DESC LIMIT n.rate_count) AS w)
            FROM (
                SELECT x.grp, min(x.rate_count) AS rate_count, min(x.period) AS period,
                       count(*)::INTEGER AS picks
                FROM underling_jobs c
                CROSS JOIN LATERAL (VALUES %s) AS x(rule, grp, rate_count, period)
                WHERE c.id = ANY($1) AND x.grp IS NOT NULL
                GROUP BY x.grp) AS n
            ON CONFLICT (grp) DO UPDATE SET starts = EXCLUDED.starts$q$, rate_groups_sql)
        USING picked, now_s;
    END IF;
    RETURN picked;
END;
$$ LANGUAGE plpgsql
-- The candidates are read by the claim's index (a sequential scan would read every job); the
-- joins of the pick are among a few hundred candidates, where hashing suits (the caller,
-- underling_claim_jobs, turns hash joins off for its own statements).
SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off
SET enable_hashjoin = on SET enable_mergejoin = on SET enable_material = on SET enable_sort = on
SET search_path FROM CURRENT;
