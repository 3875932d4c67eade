-- Whether one of the queues ?1 is a FIFO queue.
SELECT EXISTS (SELECT 1 FROM underling_queues WHERE fifo AND name IN (SELECT value FROM json_each(?1)))
