-- Adds a schedule, or updates the one of that name. An update keeps next_run while the
-- expression and time zone stay the same (a due tick is neither lost nor repeated), and keeps
-- the pause flag, the last run and the creation time.
INSERT INTO underling_schedules AS s (
    name, cron, timezone, task, args, queue, priority, attempts, options, paused, catch_up,
    next_run, created, updated)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
ON CONFLICT (name) DO UPDATE SET
    cron = EXCLUDED.cron,
    timezone = EXCLUDED.timezone,
    task = EXCLUDED.task,
    args = EXCLUDED.args,
    queue = EXCLUDED.queue,
    priority = EXCLUDED.priority,
    attempts = EXCLUDED.attempts,
    options = EXCLUDED.options,
    catch_up = EXCLUDED.catch_up,
    next_run = CASE WHEN s.cron = EXCLUDED.cron AND s.timezone = EXCLUDED.timezone
                    THEN s.next_run ELSE EXCLUDED.next_run END,
    updated = EXCLUDED.updated
RETURNING (xmax = 0) AS created
