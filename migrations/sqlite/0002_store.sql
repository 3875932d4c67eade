-- The store's second shape changed nothing in SQLite's schema: its readiness rule and retry
-- transition live in the store's SQL files. Kept so that both backends number their
-- migrations alike.
SELECT 1;
