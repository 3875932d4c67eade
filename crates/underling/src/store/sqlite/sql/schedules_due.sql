-- The scheduler pass's one query: the schedules that are due at ?1 (ms), with ?1 as now.
SELECT {schedule_columns}, ?1 AS pass_now
FROM underling_schedules
WHERE NOT paused AND next_run <= ?1
ORDER BY next_run, name
