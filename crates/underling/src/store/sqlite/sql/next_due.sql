-- When the next delayed job of the queues ?1 falls due after ?2 (ms).
SELECT min(delayed) FROM underling_jobs
WHERE state = 'inactive' AND queue IN (SELECT value FROM json_each(?1)) AND delayed > ?2
