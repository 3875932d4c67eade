-- The scheduler pass's one query: the schedules that are due at $1 (the database's now when
-- NULL), each with the time taken as now. Reads the partial index of unpaused schedules.
SELECT {schedule_columns}, n.now AS pass_now
FROM (SELECT COALESCE($1::timestamptz, now()) AS now) n
JOIN underling_schedules s ON NOT s.paused AND s.next_run <= n.now
ORDER BY s.next_run, s.name
