-- Fails inactive jobs that have been due for more than ?2 ms before ?1 (ms).
UPDATE underling_jobs SET state = 'failed', finished = ?1, result = '"Job appears stuck in queue"'
WHERE state = 'inactive' AND delayed <= ?1 - ?2
