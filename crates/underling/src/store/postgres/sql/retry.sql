-- Puts every matching job back to inactive as a new attempt (from any state), applies the
-- changes given, replaces the parents when new ones are given, and wakes the workers of jobs
-- that are due. $1..$6 the filter, $7 delay (s), $8 queue, $9 priority, $10 attempts, $11 lax,
-- $12 expire (s), $13 parents (NULL: keep), $14 the wake-up channel, $15 now.
WITH t AS (
    SELECT COALESCE($15::timestamptz, now()) AS at
), upd AS (
    UPDATE underling_jobs AS j SET state = 'inactive', retries = j.retries + 1, retried = t.at,
        delayed = t.at + make_interval(secs => COALESCE($7, 0)),
        queue = COALESCE($8, j.queue), priority = COALESCE($9, j.priority),
        attempts = COALESCE($10, j.attempts), lax = COALESCE($11, j.lax),
        expires = CASE WHEN $12::float8 IS NULL THEN j.expires ELSE t.at + make_interval(secs => $12) END,
        has_parents = CASE WHEN $13::bigint[] IS NULL THEN j.has_parents ELSE cardinality($13) > 0 END
    FROM t
    WHERE {filter}
    RETURNING j.id, j.queue, j.delayed, t.at
), del AS (
    -- The DELETE and the INSERT touch disjoint keys: the sub-statements of one statement run
    -- in no defined order, so deleting a pair and inserting it again would break the key.
    DELETE FROM underling_job_deps d USING upd
    WHERE $13::bigint[] IS NOT NULL AND d.child_id = upd.id AND d.parent_id <> ALL($13)
), ins AS (
    INSERT INTO underling_job_deps (child_id, parent_id)
    SELECT DISTINCT upd.id, p FROM upd, unnest($13::bigint[]) AS p
    ON CONFLICT DO NOTHING
), wake AS (
    SELECT pg_notify($14, s.queue) FROM (SELECT DISTINCT queue FROM upd WHERE delayed <= at) s
)
SELECT count(*) FROM upd WHERE (SELECT count(*) FROM wake) >= 0
