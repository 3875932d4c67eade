-- Pauses ($2 true) or resumes a schedule; a paused schedule that is resumed starts again from
-- its next tick after now ($3), without the ticks it missed while paused.
UPDATE underling_schedules
SET next_run = CASE WHEN paused AND NOT $2 THEN $3 ELSE next_run END,
    paused = $2,
    updated = $4
WHERE name = $1
