-- The state of the job ?1 holding the line of FIFO queue ?2 (no row: gone, or moved).
SELECT state FROM underling_jobs WHERE id = ?1 AND queue = ?2
