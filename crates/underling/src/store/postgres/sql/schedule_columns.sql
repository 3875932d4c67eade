name, cron, timezone, task, args, queue, priority, attempts, options, paused, catch_up, next_run, last_run, last_job_id, created, updated
