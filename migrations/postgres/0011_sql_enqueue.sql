-- underling_enqueue: enqueue one job from SQL, in the caller's transaction (the job exists iff
-- it commits), for applications in any language:
--
--   SELECT underling_enqueue('mail.send', '{"to": "a@example.com"}', queue => 'mail',
--                            priority => 5, delay => '5 min', attempts => 3);
--
-- It applies the library's rules with the library's messages (SQLSTATE 22023
-- invalid_parameter_value, 23503 foreign_key_violation for a parent that does not exist, or
-- 23505 unique_violation when a live job holds the unique key under on_conflict => 'error'),
-- takes what it leaves unset from the defaults the task's workers published (underling_tasks),
-- then the built-in ones, and inserts through underling_enqueue_jobs: the same row, the same
-- dependencies and the same wake-up of listening workers (sent at commit) as the library.
-- NUL characters need no check here: PostgreSQL's text and jsonb cannot hold them.
--
-- The wake-up channel is the library's, 'underling.' and the schema: the schema the function
-- lives in (search_path FROM CURRENT pins it to the one the migration ran in).
CREATE OR REPLACE FUNCTION underling_enqueue(
    task     TEXT,
    args     JSONB       DEFAULT '{}',
    queue    TEXT        DEFAULT NULL,
    priority INTEGER     DEFAULT NULL,
    delay    INTERVAL    DEFAULT NULL,
    attempts INTEGER     DEFAULT NULL,
    parents  BIGINT[]    DEFAULT NULL,
    run_at   TIMESTAMPTZ DEFAULT NULL,
    expire   INTERVAL    DEFAULT NULL,
    lax      BOOLEAN     DEFAULT false,
    notes    JSONB       DEFAULT NULL,
    unique_key   TEXT     DEFAULT NULL,
    unique_scope TEXT     DEFAULT NULL,
    unique_for   INTERVAL DEFAULT NULL,
    on_conflict  TEXT     DEFAULT 'existing',
    timeout      INTERVAL DEFAULT NULL)
RETURNS BIGINT AS $$
DECLARE
    t underling_tasks%ROWTYPE;
    q TEXT;
    delay_secs DOUBLE PRECISION;
    expire_secs DOUBLE PRECISION;
    deps BIGINT[];
    missing BIGINT;
    new_id BIGINT;
    unique_for_secs DOUBLE PRECISION;
    timeout_secs DOUBLE PRECISION;
    scope TEXT;
    -- The library's longest delay or expiry (MAX_DURATION): 100 years of 366 days.
    max_secs CONSTANT DOUBLE PRECISION := 100.0 * 366 * 24 * 3600;
BEGIN
    IF task IS NULL OR task = '' OR task ~ '^[[:space:]]|[[:space:]]$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid task name %s: a task name must be a non-empty string without surrounding spaces or NUL characters',
                             COALESCE(to_json(task)::text, 'NULL'));
    END IF;
    IF args IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'invalid job arguments: args is SQL NULL',
            HINT = 'Pass JSON (''{}''::jsonb, or ''null''::jsonb for a JSON null), or leave args out for {}.';
    END IF;
    IF queue IS NOT NULL AND (queue = '' OR queue ~ '^[[:space:]]|[[:space:]]$') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid queue name %s: a queue name must be a non-empty string without surrounding spaces or NUL characters',
                             to_json(queue)::text);
    END IF;
    IF attempts IS NOT NULL AND attempts < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid option: attempts must be at least 1, got %s', attempts);
    END IF;
    delay_secs := extract(epoch FROM delay);
    expire_secs := extract(epoch FROM expire);
    IF delay_secs < 0 OR expire_secs < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid option: %s must not be negative, got %s',
                             CASE WHEN delay_secs < 0 THEN 'delay' ELSE 'expire' END,
                             CASE WHEN delay_secs < 0 THEN delay ELSE expire END);
    END IF;
    IF delay_secs > max_secs OR expire_secs > max_secs THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid option: %s must be at most 100 years, got %s days',
                             CASE WHEN delay_secs > max_secs THEN 'delay' ELSE 'expire' END,
                             floor(CASE WHEN delay_secs > max_secs THEN delay_secs ELSE expire_secs END / 86400));
    END IF;
    IF notes IS NOT NULL AND jsonb_typeof(notes) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid notes: notes must be a JSON object, got %s',
                             CASE jsonb_typeof(notes) WHEN 'null' THEN 'null' WHEN 'boolean' THEN 'a boolean'
                                  WHEN 'number' THEN 'a number' WHEN 'string' THEN 'a string'
                                  ELSE 'an array' END);
    END IF;
    -- Unique jobs (0010) with an explicit key, with the library's rules for keys, scopes and
    -- policies: a period without a scope means the period scope, neither means active.
    unique_for_secs := extract(epoch FROM unique_for);
    IF unique_key IS NULL AND (unique_scope IS NOT NULL OR unique_for IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'invalid option: unique_scope and unique_for need a unique_key';
    END IF;
    IF unique_key IS NOT NULL THEN
        IF octet_length(unique_key) = 0 OR octet_length(unique_key) > 512 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid option: a unique key must be 1 to 512 bytes, got %s (hash longer keys)',
                                 octet_length(unique_key));
        END IF;
        scope := COALESCE(unique_scope, CASE WHEN unique_for IS NULL THEN 'active' ELSE 'period' END);
        IF scope NOT IN ('inactive', 'active', 'period') THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid option: unknown unique scope %s: expected inactive, active or period',
                                 to_json(scope)::text);
        END IF;
        IF scope = 'period' AND unique_for IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'invalid option: the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h';
        END IF;
        IF scope <> 'period' AND unique_for IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid option: unique_for (--unique-for) only goes with the unique scope period, not %s', scope);
        END IF;
        IF unique_for_secs <= 0 OR unique_for_secs > max_secs THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid option: unique_for must be longer than zero and at most 100 years, got %s', unique_for);
        END IF;
        IF on_conflict IS NULL OR on_conflict NOT IN ('existing', 'replace', 'error') THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid option: unknown conflict policy %s: expected existing, replace or error',
                                 COALESCE(to_json(on_conflict)::text, 'NULL'));
        END IF;
    END IF;
    timeout_secs := extract(epoch FROM timeout);
    IF timeout_secs <= 0 OR timeout_secs > max_secs THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid option: timeout must be longer than zero and at most 100 years, got %s', timeout);
    END IF;
    deps := ARRAY(SELECT DISTINCT p FROM unnest(COALESCE(parents, '{}')) AS p
                  WHERE p IS NOT NULL ORDER BY p);
    IF array_position(parents, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'invalid option: parents must not contain NULL';
    END IF;
    IF cardinality(deps) > 0 THEN
        missing := underling_missing_parent(deps);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
                MESSAGE = format('parent job %s does not exist', missing);
        END IF;
    END IF;
    -- What the enqueue leaves unset comes from the task's published defaults, then the
    -- built-in ones (queue default, priority 0, one attempt), as in the library.
    SELECT * INTO t FROM underling_tasks WHERE name = task;
    q := COALESCE(queue, t.queue, 'default');
    IF unique_key IS NOT NULL OR timeout IS NOT NULL THEN
        -- The unique enqueue of 0010: the id of the live holder of the key when there is one
        -- (or the replaced job), SQLSTATE UL001 under the policy error.
        BEGIN
            SELECT e.id INTO new_id FROM underling_enqueue_unique(
                ARRAY[task], ARRAY[args], ARRAY[q], ARRAY[COALESCE(priority, t.priority, 0)],
                ARRAY[COALESCE(attempts, t.attempts, 1)], ARRAY[delay_secs], ARRAY[run_at],
                ARRAY[expire_secs], ARRAY[COALESCE(lax, false)], ARRAY[cardinality(deps) > 0],
                ARRAY[COALESCE(notes, '{}')], array_fill(1::bigint, ARRAY[cardinality(deps)]), deps,
                'underling.' || current_schema(), now(), ARRAY[unique_key], ARRAY[scope],
                ARRAY[unique_for_secs], ARRAY[on_conflict], ARRAY[round(timeout_secs * 1000)::bigint]) AS e;
        EXCEPTION WHEN SQLSTATE 'UL001' THEN
            -- The library's words for the policy error (UL001 carries the key and the holder).
            DECLARE holder TEXT; BEGIN
                GET STACKED DIAGNOSTICS holder = PG_EXCEPTION_DETAIL;
                RAISE EXCEPTION USING ERRCODE = 'unique_violation', DETAIL = holder,
                    MESSAGE = format('a job with the unique key %s exists already: job %s (the enqueue''s conflict policy is error; use existing to get its id, or replace to update it)',
                                     to_json(unique_key)::text, holder);
            END;
        END;
        RETURN new_id;
    END IF;
    SELECT e.id INTO new_id FROM underling_enqueue_jobs(
        ARRAY[task], ARRAY[args], ARRAY[q], ARRAY[COALESCE(priority, t.priority, 0)],
        ARRAY[COALESCE(attempts, t.attempts, 1)], ARRAY[delay_secs], ARRAY[run_at],
        ARRAY[expire_secs], ARRAY[COALESCE(lax, false)], ARRAY[cardinality(deps) > 0],
        ARRAY[COALESCE(notes, '{}')], array_fill(1::bigint, ARRAY[cardinality(deps)]), deps,
        'underling.' || current_schema(), now()) AS e;
    RETURN new_id;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
