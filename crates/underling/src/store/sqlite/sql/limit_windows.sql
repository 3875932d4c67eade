-- The rate windows of the limited claim.
SELECT grp, starts FROM underling_limit_starts
