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
    job    JSONB       NOT NULL
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
-- that went away (see rescue_settles in the store).
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

-- The job's record as events and the audit log carry it: the columns of the job (not the
-- store's own bookkeeping), and its parents.
CREATE OR REPLACE FUNCTION underling_job_record(j underling_jobs)
RETURNS JSONB LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT to_jsonb(j) - 'wait_channel' - 'promoted' - 'has_parents'
        || jsonb_build_object('parents', CASE WHEN j.has_parents THEN COALESCE(
               (SELECT jsonb_agg(parent_id ORDER BY parent_id) FROM underling_job_deps
                WHERE child_id = j.id), '[]'::jsonb) ELSE '[]'::jsonb END)
$$;

-- Audit triggers: one row per transition, written by the statement that made it.
CREATE OR REPLACE FUNCTION underling_audit_write() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO underling_audit (event, job_id, job)
        SELECT 'enqueued', n.id, underling_job_record(n) FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO underling_audit (event, job_id, job)
        SELECT e.event, n.id, underling_job_record(n)
        FROM new_rows n JOIN old_rows o ON o.id = n.id,
             LATERAL (SELECT underling_job_event(o, n) AS event) e
        WHERE e.event IS NOT NULL ORDER BY n.id;
    ELSE
        INSERT INTO underling_audit (event, job_id, job)
        SELECT 'removed', o.id, underling_job_record(o) FROM old_rows o ORDER BY o.id;
    END IF;
    RETURN NULL;
END;
$$;

-- Event triggers: the transitions of a statement as NOTIFYs on the channel given as the
-- trigger's argument, each payload a JSON array of {"event", "job"} under PostgreSQL's limit
-- of 8,000 bytes. A record too large for one payload goes without its args, result and notes
-- ("partial": the subscriber reads them back unless the job was removed), and if even that is
-- too large (task and queue names of kilobytes), as {"event", "id"} alone. A NOTIFY that
-- failed would fail the statement that changed the job: nothing here may exceed the limit.
CREATE OR REPLACE FUNCTION underling_events_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := TG_ARGV[0];
    transitions refcursor;
    r RECORD;
    piece TEXT;
    buf TEXT := '';
BEGIN
    IF TG_OP = 'INSERT' THEN
        OPEN transitions FOR
        SELECT 'enqueued' AS event, n.id, underling_job_record(n) AS job
        FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        OPEN transitions FOR
        SELECT e.event, n.id, underling_job_record(n) AS job
        FROM new_rows n JOIN old_rows o ON o.id = n.id,
             LATERAL (SELECT underling_job_event(o, n) AS event) e
        WHERE e.event IS NOT NULL ORDER BY n.id;
    ELSE
        OPEN transitions FOR
        SELECT 'removed' AS event, o.id, underling_job_record(o) AS job
        FROM old_rows o ORDER BY o.id;
    END IF;
    LOOP
        FETCH transitions INTO r;
        EXIT WHEN NOT FOUND;
        piece := jsonb_build_object('event', r.event, 'job', r.job)::text;
        IF octet_length(piece) > 7800 THEN
            piece := jsonb_build_object('event', r.event, 'partial', true, 'job',
                r.job || '{"args": null, "result": null, "notes": {}}'::jsonb)::text;
        END IF;
        IF octet_length(piece) > 7800 THEN
            piece := jsonb_build_object('event', r.event, 'id', r.id)::text;
        END IF;
        IF buf <> '' AND octet_length(buf) + octet_length(piece) > 7800 THEN
            PERFORM pg_notify(channel, '[' || buf || ']');
            buf := '';
        END IF;
        buf := CASE WHEN buf = '' THEN piece ELSE buf || ',' || piece END;
    END LOOP;
    CLOSE transitions;
    IF buf <> '' THEN
        PERFORM pg_notify(channel, '[' || buf || ']');
    END IF;
    RETURN NULL;
END;
$$;
