-- Schedules by name: the ones named in ?1 (a JSON array), or all when it is empty.
SELECT {schedule_columns} FROM underling_schedules
WHERE json_array_length(?1) = 0 OR name IN (SELECT value FROM json_each(?1))
ORDER BY name
