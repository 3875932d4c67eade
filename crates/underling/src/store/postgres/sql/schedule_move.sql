-- The compare-and-set of a tick: moves next_run on only if it is still the one the scheduler
-- read ($2) and the schedule is not paused; with $2 NULL (a run now), whatever it is. Of many
-- schedulers that read the same tick, the first takes the row's lock and moves it; the others
-- wait for that lock, see the new next_run and change nothing.
UPDATE underling_schedules
SET next_run = COALESCE($3, next_run), updated = $4
WHERE name = $1 AND ($2::timestamptz IS NULL OR (next_run = $2 AND NOT paused))
RETURNING name
