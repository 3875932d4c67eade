-- Removes up to $7 matching jobs with ids above $8, oldest first; says how many it removed and
-- the last id it picked (where the next batch starts). $1..$6 the filter. One short statement:
-- claims skip the rows it locks, and it waits at most for a claim or settle of a row it picked.
WITH picked AS MATERIALIZED (
    SELECT j.id FROM underling_jobs j WHERE {filter} AND j.id > $8 ORDER BY j.id LIMIT $7
), del AS (
    -- The filter again, on the row as it is when locked: a job claimed or retried since it was
    -- picked no longer matches, and stays.
    DELETE FROM underling_jobs AS j USING picked p WHERE j.id = p.id AND {filter}
    RETURNING j.id
)
SELECT (SELECT count(*) FROM del), (SELECT max(id) FROM picked)
