-- Adds a schedule, or updates the one of that name (see the PostgreSQL statement).
INSERT INTO underling_schedules (
    name, cron, timezone, task, args, queue, priority, attempts, options, paused, catch_up,
    next_run, created, updated)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
ON CONFLICT (name) DO UPDATE SET
    cron = excluded.cron,
    timezone = excluded.timezone,
    task = excluded.task,
    args = excluded.args,
    queue = excluded.queue,
    priority = excluded.priority,
    attempts = excluded.attempts,
    options = excluded.options,
    catch_up = excluded.catch_up,
    next_run = CASE WHEN underling_schedules.cron = excluded.cron
                     AND underling_schedules.timezone = excluded.timezone
                    THEN underling_schedules.next_run ELSE excluded.next_run END,
    updated = excluded.updated
