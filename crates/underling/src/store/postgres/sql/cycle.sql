-- A worker's cycle (see underling_work_cycle in the migrations).
SELECT * FROM underling_work_cycle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::int, $12)
