SELECT EXISTS (SELECT 1 FROM underling_schedules WHERE name = ?1)
