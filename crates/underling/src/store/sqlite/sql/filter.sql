(json_array_length(?1) = 0 OR j.id IN (SELECT value FROM json_each(?1)))
AND (json_array_length(?2) = 0 OR j.state IN (SELECT value FROM json_each(?2)))
AND (json_array_length(?3) = 0 OR j.queue IN (SELECT value FROM json_each(?3)))
AND (json_array_length(?4) = 0 OR j.task IN (SELECT value FROM json_each(?4)))
AND NOT EXISTS (SELECT 1 FROM json_each(?5) k WHERE NOT EXISTS (
                  SELECT 1 FROM json_each(j.notes) n WHERE n.key = k.value))
AND (?6 IS NULL OR j.finished < ?6)
