DELETE FROM underling_schedules WHERE name = $1
