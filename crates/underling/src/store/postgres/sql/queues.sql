-- Every queue with jobs or a pause flag, with counts per state at $1 (expired jobs are gone).
SELECT name, COALESCE(q.paused, false),
       COALESCE(c.inactive, 0), COALESCE(c.active, 0), COALESCE(c.failed, 0), COALESCE(c.finished, 0)
FROM (SELECT queue AS name,
             count(*) FILTER (WHERE state = 'inactive'
                              AND NOT underling_gone(j, COALESCE($1::timestamptz, now()))) AS inactive,
             count(*) FILTER (WHERE state = 'active') AS active,
             count(*) FILTER (WHERE state = 'failed') AS failed,
             count(*) FILTER (WHERE state = 'finished') AS finished
      FROM underling_jobs j GROUP BY queue) c
FULL JOIN underling_queues q USING (name) ORDER BY name
