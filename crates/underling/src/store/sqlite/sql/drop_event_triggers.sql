DROP TRIGGER IF EXISTS {table}_insert;
DROP TRIGGER IF EXISTS {table}_update;
DROP TRIGGER IF EXISTS {table}_delete;
