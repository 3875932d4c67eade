-- Workers (all, or the ids ?1) with the jobs they run, oldest first.
SELECT w.id, w.host, w.pid, w.started, w.notified, w.status,
       (SELECT json_group_array(j.id) FROM underling_jobs j
        WHERE j.state = 'active' AND j.worker_id = w.id)
FROM underling_workers w
WHERE json_array_length(?1) = 0 OR w.id IN (SELECT value FROM json_each(?1))
ORDER BY w.id
