-- How many jobs match. $1..$6 the filter.
SELECT count(*) FROM underling_jobs j WHERE {filter}
