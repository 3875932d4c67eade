-- Schedules (cron): jobs enqueued at the ticks of a cron expression in a time zone
-- (`Queue::add_schedule`, `underling schedule add`, `POST /api/v1/schedules`).
--
-- `next_run` is the next tick not yet enqueued. A scheduler pass (every worker runs one about
-- every second) reads the schedules that are due, and for each one, in one transaction,
-- moves `next_run` on with a compare-and-set (`WHERE name = $1 AND next_run = $seen`) and
-- enqueues the tick's job: of any number of schedulers that saw the same tick, one moves
-- `next_run` and enqueues, the others change nothing. The job's queue, priority and
-- attempts are NULL when the schedule leaves them to the task's defaults; `options` holds the
-- other enqueue options in the vocabulary of a `job enqueue-batch` line (expire, timeout,
-- notes, unique_key, unique_by, unique_scope, unique_for, on_conflict).
CREATE TABLE IF NOT EXISTS underling_schedules (
    name        TEXT PRIMARY KEY,
    cron        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    task        TEXT NOT NULL,
    args        JSONB NOT NULL DEFAULT '{}',
    queue       TEXT,
    priority    INTEGER,
    attempts    INTEGER,
    options     JSONB NOT NULL DEFAULT '{}',
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    catch_up    TEXT NOT NULL DEFAULT 'last' CHECK (catch_up IN ('last', 'skip')),
    next_run    TIMESTAMPTZ NOT NULL,
    last_run    TIMESTAMPTZ,
    last_job_id BIGINT,
    created     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The pass reads only the schedules that are due.
CREATE INDEX IF NOT EXISTS underling_schedules_due
    ON underling_schedules (next_run) WHERE NOT paused;
