-- Strict FIFO queues (see PostgreSQL's 0016_limits_fifo.sql): a FIFO queue runs one job at a
-- time, in claim order, the next only after the previous one settled for good; the job that
-- holds the line (`fifo_holder`) keeps it while it runs and while it waits for a retry.
-- SQLite's limited claim (crate::store::sqlite::limits) serves them.
ALTER TABLE underling_queues ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE underling_queues ADD COLUMN fifo_holder INTEGER;
