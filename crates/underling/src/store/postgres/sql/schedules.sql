-- Schedules by name: the ones named in $1, or all when it is empty.
SELECT {schedule_columns} FROM underling_schedules
WHERE cardinality($1::text[]) = 0 OR name = ANY($1)
ORDER BY name
