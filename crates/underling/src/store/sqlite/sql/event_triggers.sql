-- Row triggers that write every transition of a job into {table} (underling_events while an
-- event subscriber holds a lease, underling_audit while the audit log is enabled), with the
-- job's columns at that moment. A rescue is the failed attempt of a worker that went away
-- (see rescue_settles in the store); an update that changes nothing worth telling (a delayed
-- job's promotion) writes nothing.
CREATE TRIGGER IF NOT EXISTS {table}_insert AFTER INSERT ON underling_jobs BEGIN
    INSERT INTO {table} (at, event, id, task, queue, args, state, priority, attempts, retries,
                         created, delayed, started, finished, retried, expires, lax, worker_id,
                         result, notes, parents, unique_key, timeout_ms, snoozes)
    VALUES (CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER), 'enqueued',
            NEW.id, NEW.task, NEW.queue, NEW.args, NEW.state, NEW.priority, NEW.attempts,
            NEW.retries, NEW.created, NEW.delayed, NEW.started, NEW.finished, NEW.retried,
            NEW.expires, NEW.lax, NEW.worker_id, NEW.result, NEW.notes,
            (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = NEW.id),
            NEW.unique_key, NEW.timeout_ms, NEW.snoozes);
END;
CREATE TRIGGER IF NOT EXISTS {table}_update AFTER UPDATE ON underling_jobs BEGIN
    INSERT INTO {table} (at, event, id, task, queue, args, state, priority, attempts, retries,
                         created, delayed, started, finished, retried, expires, lax, worker_id,
                         result, notes, parents, unique_key, timeout_ms, snoozes)
    SELECT CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER), e.event,
           NEW.id, NEW.task, NEW.queue, NEW.args, NEW.state, NEW.priority, NEW.attempts,
           NEW.retries, NEW.created, NEW.delayed, NEW.started, NEW.finished, NEW.retried,
           NEW.expires, NEW.lax, NEW.worker_id, NEW.result, NEW.notes,
           (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = NEW.id),
           NEW.unique_key, NEW.timeout_ms, NEW.snoozes
    FROM (SELECT CASE
        WHEN OLD.state = 'active' AND NEW.state = 'inactive' AND NEW.snoozes > OLD.snoozes
            THEN 'snoozed'
        WHEN OLD.state = 'active' AND NEW.state IN ('failed', 'inactive')
             AND NEW.result = '"Worker went away"' THEN 'rescued'
        WHEN OLD.state = 'inactive' AND NEW.state = 'active' THEN 'started'
        WHEN OLD.state = 'active' AND NEW.state = 'finished' THEN 'finished'
        WHEN OLD.state = 'active' AND NEW.state = 'failed' THEN 'failed'
        WHEN NEW.state = 'inactive' AND (OLD.state <> 'inactive' OR NEW.retries <> OLD.retries)
            THEN 'retried'
        WHEN NEW.notes IS NOT OLD.notes THEN 'noted'
        WHEN NEW.state = 'inactive' AND (NEW.priority IS NOT OLD.priority
             OR NEW.queue IS NOT OLD.queue OR NEW.delayed IS NOT OLD.delayed
             OR NEW.attempts IS NOT OLD.attempts) THEN 'retried'
    END AS event) e
    WHERE e.event IS NOT NULL;
END;
CREATE TRIGGER IF NOT EXISTS {table}_delete AFTER DELETE ON underling_jobs BEGIN
    INSERT INTO {table} (at, event, id, task, queue, args, state, priority, attempts, retries,
                         created, delayed, started, finished, retried, expires, lax, worker_id,
                         result, notes, parents, unique_key, timeout_ms, snoozes)
    VALUES (CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER), 'removed',
            OLD.id, OLD.task, OLD.queue, OLD.args, OLD.state, OLD.priority, OLD.attempts,
            OLD.retries, OLD.created, OLD.delayed, OLD.started, OLD.finished, OLD.retried,
            OLD.expires, OLD.lax, OLD.worker_id, OLD.result, OLD.notes,
            (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = OLD.id),
            OLD.unique_key, OLD.timeout_ms, OLD.snoozes);
END;
