-- How many jobs match, without the ones gone (expired) at ?7. ?1..?6 the filter.
SELECT count(*) FROM underling_jobs j WHERE {filter} AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?7)
