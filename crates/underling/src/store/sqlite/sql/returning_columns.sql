id, task, queue, args, state, priority, attempts, retries, created,
delayed, started, finished, retried, expires, lax, worker_id, result, notes, timeout_ms, snoozes
