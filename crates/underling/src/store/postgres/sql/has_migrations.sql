SELECT to_regclass('underling_migrations') IS NOT NULL
