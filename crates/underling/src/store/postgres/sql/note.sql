-- Merges $2 into a job's notes and deletes the keys $3.
UPDATE underling_jobs SET notes = (notes || $2::jsonb) - $3::text[] WHERE id = $1
