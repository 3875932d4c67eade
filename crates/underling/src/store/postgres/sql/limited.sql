-- Whether a limit or a FIFO queue concerns claims of the queues $1 (see 0016_limits_fifo.sql).
SELECT underling_limited($1)
