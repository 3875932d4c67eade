-- Removes up to $7 matching jobs with ids above $8, oldest first; says how many and the last
-- id removed (where the next batch starts). $1..$6 the filter.
WITH del AS (
    DELETE FROM underling_jobs WHERE id IN (
        SELECT j.id FROM underling_jobs j WHERE {filter} AND j.id > $8 ORDER BY j.id LIMIT $7)
    RETURNING id
)
SELECT count(*), max(id) FROM del
