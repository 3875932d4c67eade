-- Workers (all, or the ids $1) with the jobs they run, oldest first.
SELECT w.id, w.host, w.pid, w.started, w.notified, w.status,
       ARRAY(SELECT j.id FROM underling_jobs j
             WHERE j.state = 'active' AND j.worker_id = w.id ORDER BY j.id)
FROM underling_workers w
WHERE cardinality($1::bigint[]) = 0 OR w.id = ANY($1) ORDER BY w.id
