UPDATE underling_workers SET notified = ?2, status = ?3 WHERE id = ?1
