SELECT notes FROM underling_jobs WHERE id = ?1
