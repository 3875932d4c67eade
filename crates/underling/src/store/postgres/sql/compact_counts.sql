-- Folds the deltas of 0009_counts into the counters (one caller at a time; others get 0).
SELECT underling_compact_counts()
