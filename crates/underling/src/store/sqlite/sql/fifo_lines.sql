-- The FIFO queues among the queues ?1: name, the job holding the line, paused.
SELECT q.name, q.fifo_holder, q.paused FROM underling_queues q
WHERE q.fifo AND q.name IN (SELECT value FROM json_each(?1))
