//! The chaos run behind `scripts/chaos.sh`: `underling-worker` processes run jobs of the
//! `example.record` task (which records every execution in a file outside the queue's tables)
//! on a throw-away PostgreSQL cluster while the run kills workers at random and starts
//! replacements, crashes and restarts the server once, and freezes then cuts one worker's
//! connection through a TCP proxy. Afterwards it judges the record: no job lost, none run
//! twice at the same time, no worker process exited on its own.

pub mod cluster;
pub mod proxy;
pub mod record;
pub mod report;
