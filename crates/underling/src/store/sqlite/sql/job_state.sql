SELECT state FROM underling_jobs WHERE id = ?1
