-- When the next delayed job of the queues falls due. $1 queues, $2 now.
SELECT min(delayed) FROM underling_jobs
WHERE state = 'inactive' AND queue = ANY($1) AND delayed > COALESCE($2::timestamptz, now())
