-- A worker's cycle (see underling_cycle in the migrations).
SELECT * FROM underling_cycle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int, $11)
