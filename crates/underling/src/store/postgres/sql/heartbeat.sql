-- Records a heartbeat and says whether it was recorded (the worker still exists) and whether
-- another worker's last heartbeat is older than missing_after (its jobs await rescue).
-- $1 worker, $2 status, $3 now, $4 missing_after (s).
WITH beat AS (
    UPDATE underling_workers SET notified = COALESCE($3::timestamptz, now()), status = $2
    WHERE id = $1
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM beat) AS recorded,
       EXISTS (SELECT 1 FROM underling_workers w
               WHERE w.id <> $1
                 AND w.notified < COALESCE($3::timestamptz, now()) - make_interval(secs => $4))
           AS others_missing
