-- Where job ?1 stands with respect to a lease (read inside the settle's write transaction).
SELECT state, retries, (worker_id IS NULL AND lease_expires IS NOT NULL) AS leased, lease_expires
FROM underling_jobs WHERE id = ?1
