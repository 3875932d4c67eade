-- Jobs that ended per queue over the hour and over the five minutes up to the minute ?1 (ms,
-- included), from the counters of migration 0017 (underling_queue_minutes).
SELECT queue,
       sum(finished),
       sum(failed),
       sum(CASE WHEN minute > ?1 - 300000 THEN finished ELSE 0 END),
       sum(CASE WHEN minute > ?1 - 300000 THEN failed ELSE 0 END)
FROM underling_queue_minutes
WHERE minute > ?1 - 3600000 AND minute <= ?1
GROUP BY queue
ORDER BY queue
