-- Job events and the audit log. Every transition of a job (enqueued, started, finished, failed,
-- retried, rescued, noted, removed) can be seen, with the job's whole record at that moment:
-- streamed live to `underling serve` and other subscribers (a NOTIFY per statement), and kept
-- in `underling_audit` while the audit log is enabled.
--
-- Neither costs anything while unused: the statement triggers that capture transitions exist
-- only while someone needs them. The store creates the audit triggers on `audit enable` (and
-- drops them on `disable`), and the event triggers while an event subscriber holds a lease in
-- `underling_event_listeners` (repair drops them once every lease has run out). A statement
-- trigger that only checked a flag still cost 15-20% of processing throughput in a pgbench
-- of claim and settle cycles: PostgreSQL captures the transition tables for it all the same.

CREATE TABLE IF NOT EXISTS underling_audit (
    id     BIGSERIAL   PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    event  TEXT        NOT NULL,
    job_id BIGINT      NOT NULL,
    -- json, not jsonb: written on the hot path, read rarely, and never queried inside.
    job    JSON        NOT NULL
);
CREATE INDEX IF NOT EXISTS underling_audit_job ON underling_audit (job_id, id);
CREATE INDEX IF NOT EXISTS underling_audit_at ON underling_audit (at);

-- Event subscribers: each renews its lease while it listens.
CREATE TABLE IF NOT EXISTS underling_event_listeners (
    id    TEXT        PRIMARY KEY,
    until TIMESTAMPTZ NOT NULL
);

-- The event a change of row `o` into row `n` is (NULL: none worth telling, such as a waiter
-- marking the job or a delayed job's promotion). A rescue is the failed attempt of a worker
-- that went away (see rescue_settles in the store). Simple enough to be inlined.
CREATE OR REPLACE FUNCTION underling_job_event(o underling_jobs, n underling_jobs)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
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

-- The record of a job with parents, as JSON text: its columns and its parents' ids. (Only
-- for jobs with parents: the common case is row_to_json alone, inline in the statements
-- below, which builds no jsonb at all. Readers ignore the store's own bookkeeping columns.)
CREATE OR REPLACE FUNCTION underling_with_parents(j underling_jobs)
RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT (row_to_json(j)::jsonb || jsonb_build_object('parents', COALESCE(
               (SELECT jsonb_agg(parent_id ORDER BY parent_id) FROM underling_job_deps
                WHERE child_id = j.id), '[]'::jsonb)))::text
$$;

-- An event too large for its share of a notification (3,900 bytes): without the job's args,
-- result and notes ("partial": the subscriber reads them back unless the job was removed),
-- or, for task and queue names of kilobytes, {"event", "id"} alone.
CREATE OR REPLACE FUNCTION underling_event_fallback(piece TEXT, id BIGINT)
RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    event JSONB := piece::jsonb;
    smaller TEXT;
BEGIN
    smaller := jsonb_build_object('event', event->'event', 'partial', true, 'job',
        (event->'job') || '{"args": null, "result": null, "notes": {}}'::jsonb)::text;
    IF octet_length(smaller) <= 3900 THEN
        RETURN smaller;
    END IF;
    RETURN jsonb_build_object('event', event->'event', 'id', id)::text;
END;
$$;

-- Audit triggers: one row per transition, written by the statement that made it.
CREATE OR REPLACE FUNCTION underling_audit_write() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO underling_audit (event, job_id, job)
        SELECT 'enqueued', n.id, (CASE WHEN n.has_parents THEN underling_with_parents(n)
                                       ELSE row_to_json(n)::text END)::json
        FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO underling_audit (event, job_id, job)
        SELECT underling_job_event(o, n), n.id,
               (CASE WHEN n.has_parents THEN underling_with_parents(n)
                     ELSE row_to_json(n)::text END)::json
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE underling_job_event(o, n) IS NOT NULL ORDER BY n.id;
    ELSE
        INSERT INTO underling_audit (event, job_id, job)
        SELECT 'removed', o.id, (CASE WHEN o.has_parents THEN underling_with_parents(o)
                                      ELSE row_to_json(o)::text END)::json
        FROM old_rows o ORDER BY o.id;
    END IF;
    RETURN NULL;
END;
$$;

-- Event triggers: the transitions of a statement as NOTIFYs on the channel given as the
-- trigger's argument, each payload a JSON array of {"event", "job"} in id order. Pieces are
-- at most 3,900 bytes (see underling_event_fallback) and are grouped by their running length
-- in windows of 3,900, so that no payload reaches PostgreSQL's limit of 8,000 bytes: a NOTIFY
-- that failed would fail the statement that changed the jobs. Each record is built once
-- (OFFSET 0 keeps the planner from copying its expression into every use).
CREATE OR REPLACE FUNCTION underling_events_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := TG_ARGV[0];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify(channel, '[' || string_agg(piece, ',' ORDER BY id) || ']')
        FROM (SELECT id, piece, (sum(octet_length(piece) + 1) OVER (ORDER BY id) - 1) / 3900 AS chunk
              FROM (SELECT id, CASE WHEN octet_length(piece) <= 3900 THEN piece
                                    ELSE underling_event_fallback(piece, id) END AS piece
                    FROM (SELECT n.id, '{"event":"enqueued","job":'
                                 || CASE WHEN n.has_parents THEN underling_with_parents(n)
                                         ELSE row_to_json(n)::text END || '}' AS piece
                          FROM new_rows n OFFSET 0) f) p) c
        GROUP BY chunk;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify(channel, '[' || string_agg(piece, ',' ORDER BY id) || ']')
        FROM (SELECT id, piece, (sum(octet_length(piece) + 1) OVER (ORDER BY id) - 1) / 3900 AS chunk
              FROM (SELECT id, CASE WHEN octet_length(piece) <= 3900 THEN piece
                                    ELSE underling_event_fallback(piece, id) END AS piece
                    FROM (SELECT n.id, '{"event":"' || underling_job_event(o, n) || '","job":'
                                 || CASE WHEN n.has_parents THEN underling_with_parents(n)
                                         ELSE row_to_json(n)::text END || '}' AS piece
                          FROM new_rows n JOIN old_rows o ON o.id = n.id
                          WHERE underling_job_event(o, n) IS NOT NULL OFFSET 0) f) p) c
        GROUP BY chunk;
    ELSE
        PERFORM pg_notify(channel, '[' || string_agg(piece, ',' ORDER BY id) || ']')
        FROM (SELECT id, piece, (sum(octet_length(piece) + 1) OVER (ORDER BY id) - 1) / 3900 AS chunk
              FROM (SELECT id, CASE WHEN octet_length(piece) <= 3900 THEN piece
                                    ELSE underling_event_fallback(piece, id) END AS piece
                    FROM (SELECT o.id, '{"event":"removed","job":'
                                 || CASE WHEN o.has_parents THEN underling_with_parents(o)
                                         ELSE row_to_json(o)::text END || '}' AS piece
                          FROM old_rows o OFFSET 0) f) p) c
        GROUP BY chunk;
    END IF;
    RETURN NULL;
END;
$$;
