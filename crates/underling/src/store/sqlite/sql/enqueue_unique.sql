-- enqueue.sql with each row's unique key: ?1 a JSON array of rows [task, args, queue,
-- priority, attempts, delayed, expires, lax, has_parents, notes, timeout_ms, unique_key,
-- unique_scope, unique_until], ?2 now (ms). Ids are handed out in input order.
INSERT INTO underling_jobs
    (task, args, queue, priority, attempts, created, delayed, expires, lax, has_parents, notes,
     timeout_ms, unique_key, unique_scope, unique_until)
SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, ?2,
       r.value ->> 5, r.value ->> 6, r.value ->> 7, r.value ->> 8, r.value ->> 9,
       r.value ->> 10, r.value ->> 11, r.value ->> 12, r.value ->> 13
FROM json_each(?1) r ORDER BY r.key
RETURNING id
