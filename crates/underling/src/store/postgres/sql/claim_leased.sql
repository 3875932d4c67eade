-- Claims jobs with a lease (see underling_claim_leased in the migrations).
-- $1 queues, $2 tasks, $3 limit, $4 lease (s), $5 now (NULL: the database's clock).
SELECT * FROM underling_claim_leased($1, $2, $3::int, $4, $5)
