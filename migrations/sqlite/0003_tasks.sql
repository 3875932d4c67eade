-- Task defaults published by workers: each worker, when it starts, writes the queue, priority,
-- attempts and timeout its tasks declare, so that an enqueuer that does not link a task (the
-- CLI, another service) applies them to jobs that leave them unset. Times are milliseconds
-- since the Unix epoch, as in every table here.
CREATE TABLE IF NOT EXISTS underling_tasks (
    name       TEXT    PRIMARY KEY,
    queue      TEXT,
    priority   INTEGER,
    attempts   INTEGER CHECK (attempts >= 1),
    timeout_ms INTEGER,
    published  INTEGER NOT NULL
);
