-- The first of the given parent ids that is not a job, or NULL.
SELECT {schema}underling_missing_parent($1)
