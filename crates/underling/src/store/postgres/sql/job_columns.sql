j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries, j.created,
j.delayed, j.started, j.finished, j.retried, j.expires, j.lax, j.worker_id, j.result, j.notes, j.unique_key, j.timeout_ms, j.snoozes
