-- A queue table churns: every job is inserted, updated two or three times and removed, which
-- leaves dead index entries in front of the claim. Vacuum and analyze it early and without
-- throttling, instead of waiting for a fifth of the table to be dead (the server default).
ALTER TABLE underling_jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
