-- Waiting for a result (Queue::wait): nothing to store on SQLite. Settles in the same process
-- wake waiters in memory, and waiters in other processes poll. This file keeps the two
-- backends numbered alike (migrations/README.md).
SELECT 1;
