-- OnConflict::Replace: the inactive holder of a unique key takes the new arguments, priority
-- and due time (?2 args, ?3 priority, ?4 delayed in ms).
UPDATE underling_jobs SET args = ?2, priority = ?3, delayed = ?4
WHERE id = ?1 AND state = 'inactive'
