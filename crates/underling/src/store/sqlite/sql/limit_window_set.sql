-- Stores a rate window: ?1 group, ?2 its start times (a JSON array of ms).
INSERT INTO underling_limit_starts (grp, starts) VALUES (?1, ?2)
ON CONFLICT (grp) DO UPDATE SET starts = excluded.starts
