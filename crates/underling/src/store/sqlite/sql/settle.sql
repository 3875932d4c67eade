-- THE RETRY TRANSITION: settles attempts that ended. A failed attempt with tries left goes back
-- to inactive as the next attempt, due after its delay; without tries left the job has failed.
-- The guard `retries = i.retries AND state = 'active'` makes an attempt that is no longer
-- current (retried, rescued or removed meanwhile) a no-op. A snoozed attempt goes back to
-- inactive after its delay as a new attempt that uses none (retries, attempts and snoozes + 1).
-- ?1 a JSON array of
-- [id, retries, ok, result, delay (ms), snooze], ?2 now (ms).
-- MATERIALIZED makes SQLite walk the input and look jobs up by id; otherwise it scans every
-- active job and re-reads the input for each (quadratic in the batch).
WITH i AS MATERIALIZED (
    SELECT value ->> 0 AS id, value ->> 1 AS retries, value ->> 2 AS ok,
           value ->> 3 AS result, value ->> 4 AS delay, value ->> 5 AS snooze
    FROM json_each(?1)
)
UPDATE underling_jobs AS j SET
    state = CASE WHEN i.ok THEN 'finished'
                 WHEN i.snooze OR j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END,
    finished = ?2,
    result = i.result,
    retries = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                   THEN j.retries + 1 ELSE j.retries END,
    attempts = CASE WHEN i.snooze THEN j.attempts + 1 ELSE j.attempts END,
    snoozes = CASE WHEN i.snooze THEN j.snoozes + 1 ELSE j.snoozes END,
    retried = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                   THEN ?2 ELSE j.retried END,
    delayed = CASE WHEN NOT i.ok AND (i.snooze OR j.retries + 1 < j.attempts)
                   THEN ?2 + i.delay ELSE j.delayed END
FROM i
WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active'
RETURNING id, state
