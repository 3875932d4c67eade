DELETE FROM underling_jobs WHERE state = 'inactive' AND expires <= ?1
