-- Job ?2 holds the line of FIFO queue ?1.
UPDATE underling_queues SET fifo_holder = ?2 WHERE name = ?1
