DELETE FROM underling_jobs WHERE id = ?1
