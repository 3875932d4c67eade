UPDATE underling_jobs SET notes = ?2 WHERE id = ?1
