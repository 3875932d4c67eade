-- Where job $1 stands with respect to a lease, locked until the transaction ends, and the
-- time to compare its lease with ($2, or the database's clock).
SELECT state, retries, (worker_id IS NULL AND lease_expires IS NOT NULL) AS leased,
       lease_expires, COALESCE($2::timestamptz, now()) AS at
FROM underling_jobs WHERE id = $1
FOR UPDATE
