SELECT count(*) FROM underling_jobs j WHERE {filter}
