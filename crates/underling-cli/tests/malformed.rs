//! Malformed command lines, one row of a table each: the built binary refuses every one with
//! the expected exit code (2 for usage errors, 1 for runtime errors) and a stderr that says
//! what was wrong, prints nothing on stdout, and writes nothing: the rows of every table of
//! the test's SQLite file or PostgreSQL schema are counted before and after each case.
//!
//! Also here: a property test that feeds arbitrary argument vectors to the command line's
//! clap parser, in process (`src/cli.rs` compiled into this test), which must never panic.

mod support;

#[path = "../src/cli.rs"]
#[allow(dead_code)]
mod cli;

use proptest::prelude::*;
use underling::{EnqueueOptions, Outcome};
use underling_testkit::support::{assert_no_failures, row_counts};

use support::{Kind, TestDb};

/// One malformed command line and how it must be refused.
struct Case {
    /// The arguments after the database flags; `{job}`, `{failed}`, `{worker}` and `{dir}`
    /// are replaced by an inactive job's id, a failed job's id, a worker's id and the test's
    /// directory.
    args: Vec<String>,
    /// The exit code: 2 for a usage error, 1 for a runtime error.
    code: i32,
    /// What stderr must contain.
    stderr: &'static str,
}

/// A table of cases, one per line: `[ARGS…] => CODE, "STDERR SUBSTRING";`.
macro_rules! cases {
    ($( [$($arg:expr),* $(,)?] => $code:literal, $stderr:literal; )*) => {
        vec![$(Case { args: vec![$($arg.to_string()),*], code: $code, stderr: $stderr }),*]
    };
}

/// Every case.
fn cases() -> Vec<Case> {
    cases![
        // job enqueue: arguments and notes.
        ["job", "enqueue", "t", "--args", "{"] => 1, "--args is not valid JSON: EOF while parsing an object";
        ["job", "enqueue", "t", "--args", "[1,"] => 1, "--args is not valid JSON: EOF while parsing a value at line 1 column 3";
        ["job", "enqueue", "t", "--args", ""] => 1, "--args is not valid JSON: EOF while parsing a value";
        ["job", "enqueue", "t", "--args", "nope"] => 1, "--args is not valid JSON: expected ident";
        ["job", "enqueue", "t", "--args", "{'k': 1}"] => 1, "--args is not valid JSON: key must be a string";
        ["job", "enqueue", "t", "--args", "@{dir}/missing.json"] => 1, "--args @{dir}/missing.json: cannot read the file";
        ["job", "enqueue", "t", "--args", "@{dir}/bad.json"] => 1, "--args is not valid JSON (in {dir}/bad.json)";
        ["job", "enqueue", "t", "--args", r#"{"k": "a\u0000b"}"#] => 1, r#"invalid job arguments: a string at $.k contains a NUL character (\u0000), which PostgreSQL cannot store;"#;
        ["job", "enqueue", "t", "--args", r#"{"k\u0000": 1}"#] => 1, r#"invalid job arguments: a string at $.k\u0000 contains a NUL character (\u0000), which PostgreSQL cannot"#;
        ["job", "enqueue", "t", "--notes", "[1]"] => 1, "notes must be a JSON object";
        ["job", "enqueue", "t", "--notes", "{"] => 1, "--notes is not valid JSON";
        ["job", "enqueue", "t", "--notes", r#"{"k\u0000": 1}"#] => 1, r#"invalid notes: a string at $.k\u0000 contains a NUL character (\u0000), which PostgreSQL cannot store; remove"#;
        ["job", "enqueue", "t", "--notes", r#"{"k": "\u0000"}"#] => 1, r#"invalid notes: a string at $.k contains a NUL character (\u0000), which PostgreSQL cannot store; remove it or"#;
        ["job", "enqueue", "t", "--json", "--args", "{"] => 1, "--args is not valid JSON: EOF while parsing an object at line 1 column 1";
        // job enqueue: task and queue names.
        ["job", "enqueue", ""] => 1, r#"invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", " t "] => 1, r#"invalid task name " t ": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", "t\n"] => 1, r#"invalid task name "t\n": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", "t", "--queue", ""] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", "t", "--queue", " q "] => 1, r#"invalid queue name " q ": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", "t", "--queue", "\tq"] => 1, r#"invalid queue name "\tq": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "enqueue", "t".repeat(2000)] => 1, "the task name is 2000 bytes long; at most 1000 are accepted";
        ["job", "enqueue"] => 2, "the following required arguments were not provided";
        ["job", "enqueue", "t", "--bogus"] => 2, "unexpected argument '--bogus'";
        // job enqueue: numbers.
        ["job", "enqueue", "t", "--priority", "99999999999"] => 2, "invalid value '99999999999' for '--priority <N>'";
        ["job", "enqueue", "t", "--priority", "high"] => 2, "invalid value 'high' for '--priority <N>'";
        ["job", "enqueue", "t", "--priority", "1.5"] => 2, "invalid value '1.5' for '--priority <N>'";
        ["job", "enqueue", "t", "--attempts", "0"] => 1, "invalid option: attempts must be at least 1, got 0";
        ["job", "enqueue", "t", "--attempts", "-3"] => 1, "invalid option: attempts must be at least 1, got -3";
        ["job", "enqueue", "t", "--attempts", "many"] => 2, "invalid value 'many' for '--attempts <N>'";
        // job enqueue: durations and times.
        ["job", "enqueue", "t", "--delay", "5x"] => 2, "invalid value '5x' for '--delay <DURATION>'";
        ["job", "enqueue", "t", "--delay=-1s"] => 2, "invalid value '-1s' for '--delay <DURATION>': a duration cannot be negative";
        ["job", "enqueue", "t", "--delay", "-1s"] => 2, "invalid value '-1s' for '--delay <DURATION>': a duration cannot be negative";
        ["job", "enqueue", "t", "--delay", "10"] => 2, "expected a number and a unit";
        ["job", "enqueue", "t", "--delay", ""] => 2, "invalid value '' for '--delay <DURATION>'";
        ["job", "enqueue", "t", "--delay", "1001y"] => 2, "durations longer than 1000 years are not supported";
        ["job", "enqueue", "t", "--run-at", "tomorrow"] => 2, "give an RFC 3339 time such as 2026-12-24T18:00:00Z";
        ["job", "enqueue", "t", "--run-at", "2030-02-30T00:00:00Z"] => 2, "invalid value '2030-02-30T00:00:00Z' for '--run-at <TIME>'";
        ["job", "enqueue", "t", "--delay", "1s", "--run-at", "2030-01-01T00:00:00Z"] => 2, "the argument '--delay <DURATION>' cannot be used with '--run-at <TIME>'";
        ["job", "enqueue", "t", "--expire", "forever"] => 2, "invalid value 'forever' for '--expire <DURATION>'";
        ["job", "enqueue", "t", "--timeout", "soon"] => 2, "invalid value 'soon' for '--timeout <DURATION>'";
        ["job", "enqueue", "t", "--timeout", "0s"] => 1, "invalid option: timeout must be longer than zero";
        // job enqueue: parents and uniqueness.
        ["job", "enqueue", "t", "--parent", "abc"] => 2, "invalid value 'abc' for '--parent <ID>'";
        ["job", "enqueue", "t", "--parent", "999999"] => 1, "parent job 999999 does not exist";
        ["job", "enqueue", "t", "--parent", "99999999999999999999"] => 2, "invalid value '99999999999999999999' for '--parent <ID>'";
        ["job", "enqueue", "t", "--unique-key", "k", "--unique-by", "args"] => 2, "the argument '--unique-key <KEY>' cannot be used with '--unique-by <FROM>'";
        ["job", "enqueue", "t", "--unique-by", "tenant"] => 2, "expected args or args-and-queue";
        ["job", "enqueue", "t", "--unique-scope", "forever"] => 2, "invalid value 'forever' for '--unique-scope <SCOPE>'";
        ["job", "enqueue", "t", "--on-conflict", "explode"] => 2, "invalid value 'explode' for '--on-conflict <POLICY>'";
        ["job", "enqueue", "t", "--unique-for", "1h"] => 1, "invalid option: unique_scope, unique_for and on_conflict need unique_key or unique_by";
        ["job", "enqueue", "t", "--unique-key", "k", "--unique-scope", "period"] => 1, "invalid option: the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h";
        ["job", "enqueue", "t", "--unique-key", ""] => 1, "invalid option: a unique key must be 1 to 512 bytes, got 0 (hash longer keys)";
        // job enqueue-batch: every line checked before anything is written.
        ["job", "enqueue-batch", "{dir}/missing.jsonl"] => 1, "cannot read {dir}/missing.jsonl: No such file or directory (os error 2)";
        ["job", "enqueue-batch", "{dir}/broken.jsonl"] => 1, "line 2: EOF while parsing a value at line 1 column 9";
        ["job", "enqueue-batch", "{dir}/array.jsonl"] => 1, r#"line 1: expected a JSON object such as {"task": "mail.send"}, one job per line"#;
        ["job", "enqueue-batch", "{dir}/empty-task.jsonl"] => 1, r#"line 2: invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL"#;
        ["job", "enqueue-batch", "{dir}/unknown-field.jsonl"] => 1, "line 1: unknown field `prio`, expected one of `task`, `args`, `queue`, `priority`, `attempts`, `delay`,";
        ["job", "enqueue-batch", "{dir}/bad-parent.jsonl"] => 1, "line 1: parent job 999999 does not exist";
        ["job", "enqueue-batch", "--json", "{dir}/broken.jsonl"] => 1, "line 2: EOF while parsing a value at line 1 column 9";
        ["job", "enqueue-batch"] => 2, "the following required arguments were not provided";
        // job list.
        ["job", "list", "--state", "bogus"] => 2, r#"unknown job state "bogus": expected one of"#;
        ["job", "list", "--limit", "-1"] => 2, "invalid value '-1' for '--limit <N>'";
        ["job", "list", "--limit", "abc"] => 2, "invalid value 'abc' for '--limit <N>'";
        ["job", "list", "--limit", "99999999999999999999999"] => 2, "invalid value '99999999999999999999999' for '--limit <N>'";
        ["job", "list", "--offset", "x"] => 2, "invalid value 'x' for '--offset <N>'";
        ["job", "list", "--before", "abc"] => 2, "invalid value 'abc' for '--before <ID>'";
        ["job", "list", "--before", "5", "--offset", "2"] => 2, "the argument '--before <ID>' cannot be used with '--offset <N>'";
        ["job", "list", "--json", "--state", "bogus"] => 2, r#"unknown job state "bogus""#;
        // job show, wait, retry, remove, purge, stop, kill.
        ["job", "show", "abc"] => 2, "invalid value 'abc' for '<ID>'";
        ["job", "show", "999999"] => 1, "job 999999 not found";
        ["job", "show", "--", "-1"] => 1, "job -1 not found";
        ["job", "show", "-1"] => 1, "job -1 not found";
        ["job", "remove", "-5"] => 1, "job -5 not found";
        ["job", "enqueue", "t", "--parent", "-5"] => 1, "parent job -5 does not exist";
        ["job", "show", "--json", "999999"] => 1, "job 999999 not found";
        ["job", "wait", "abc"] => 2, "invalid value 'abc' for '<ID>'";
        ["job", "wait", "{job}", "--timeout", "forever"] => 2, "invalid value 'forever' for '--timeout <DURATION>'";
        ["job", "wait", "999999", "--timeout", "1s"] => 1, "job 999999 not found";
        ["job", "retry", "abc"] => 2, "invalid value 'abc' for '[ID]...'";
        ["job", "retry"] => 2, "the following required arguments were not provided";
        ["job", "retry", "999999"] => 1, "job 999999 not found";
        ["job", "retry", "--state", "bogus"] => 2, r#"invalid value 'bogus' for '--state <S>': unknown job state "bogus": expected one of inactive, active,"#;
        ["job", "retry", "--state", "failed", "5"] => 2, "the argument '--state <S>' cannot be used with '[ID]...'";
        ["job", "retry", "--task", "t"] => 2, "--state";
        ["job", "retry", "{failed}", "--attempts", "0"] => 1, "invalid option: attempts must be at least 1, got 0";
        ["job", "retry", "{failed}", "--queue", ""] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["job", "retry", "{failed}", "--delay", "5x"] => 2, "invalid value '5x' for '--delay <DURATION>'";
        ["job", "retry", "{failed}", "--priority", "2147483648"] => 2, "invalid value '2147483648' for '--priority <N>'";
        ["job", "remove", "abc"] => 2, "invalid value 'abc' for '<ID>...'";
        ["job", "remove"] => 2, "the following required arguments were not provided";
        ["job", "remove", "999999"] => 1, "job 999999 not found";
        ["job", "remove", "99999999999999999999"] => 2, "invalid value '99999999999999999999' for '<ID>...'";
        ["job", "purge", "--state", "bogus"] => 2, r#"invalid value 'bogus' for '--state <S>': unknown job state "bogus": expected one of inactive, active,"#;
        ["job", "purge", "--older-than", "5x"] => 2, "invalid value '5x' for '--older-than <DURATION>'";
        ["job", "purge", "--batch", "0"] => 2, "invalid value '0' for '--batch <N>'";
        ["job", "stop", "abc"] => 2, "invalid value 'abc' for '<ID>'";
        ["job", "stop", "999999"] => 1, "job 999999 not found";
        ["job", "kill", "{job}"] => 1, "is not running (it is inactive): only an active job can be stopped or killed";
        // queue.
        ["queue", "pause", ""] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["queue", "pause", " q "] => 1, r#"invalid queue name " q ": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["queue", "pause", "q".repeat(5000)] => 1, "the queue name is 5000 bytes long; at most 1000 are accepted";
        ["queue", "resume", "q\r\n"] => 1, r#"invalid queue name "q\r\n": a queue name must be a non-empty string without surrounding spaces or NUL"#;
        ["queue", "fifo", "q", "maybe"] => 2, "invalid value 'maybe' for '<STATE>'";
        ["queue", "fifo", "", "on"] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["queue", "fifo", "q"] => 2, "the following required arguments were not provided";
        ["queue", "drain", "q"] => 2, "unrecognized subcommand 'drain'";
        // limit.
        ["limit", "set", "--queue", "q", "--rate", "100/0s"] => 2, "invalid value '100/0s' for '--rate <COUNT/PERIOD>'";
        ["limit", "set", "--queue", "q", "--rate", "abc/1m"] => 2, "invalid value 'abc/1m' for '--rate <COUNT/PERIOD>'";
        ["limit", "set", "--queue", "q", "--rate", "100"] => 2, "invalid value '100' for '--rate <COUNT/PERIOD>'";
        ["limit", "set", "--queue", "q", "--rate", "0/1m"] => 2, "invalid value '0/1m' for '--rate <COUNT/PERIOD>'";
        ["limit", "set", "--queue", "q", "--rate=-5/1m"] => 2, "invalid value '-5/1m' for '--rate <COUNT/PERIOD>'";
        ["limit", "set", "--queue", "q", "--concurrency", "0"] => 1, "invalid limit: queue q: concurrency must be at least 1 (to stop a queue, pause it)";
        ["limit", "set", "--queue", "q", "--concurrency", "-1"] => 2, "invalid value '-1' for '--concurrency <N>'";
        ["limit", "set", "--queue", "q", "--concurrency", "lots"] => 2, "invalid value 'lots' for '--concurrency <N>'";
        ["limit", "set", "--queue", "q"] => 1, "give a concurrency, a rate or both";
        ["limit", "set", "--concurrency", "1"] => 2, "the following required arguments were not provided";
        ["limit", "set", "--queue", "q", "--task", "t", "--concurrency", "1"] => 2, "the argument '--queue <QUEUE>' cannot be used with '--task <TASK>'";
        ["limit", "set", "--queue", "", "--concurrency", "1"] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["limit", "set", "--key-from", "tenant", "--concurrency", "1"] => 1, r#"invalid limit: key "tenant" must start with args. or notes., like args.tenant"#;
        ["limit", "set", "--key-from", "args.", "--concurrency", "1"] => 1, "key path \"\" must be names joined by dots";
        ["limit", "set", "--key-from", "args.a..b", "--concurrency", "1"] => 1, r#"invalid limit: key path "a..b" must be names joined by dots, like tenant or customer.id (at most 200 bytes)"#;
        ["limit", "set", "--key-from", "body.tenant", "--concurrency", "1"] => 1, r#"invalid limit: key "body.tenant" must start with args. or notes., like args.tenant"#;
        ["limit", "remove", "--key-from", "bogus"] => 1, r#"invalid limit: key "bogus" must start with args. or notes., like args.tenant"#;
        ["limit", "remove"] => 2, "the following required arguments were not provided";
        // schedule.
        ["schedule", "add", "n", "not a cron", "t"] => 1, r#"invalid cron expression "not a cron": it has 3 fields; write 5 fields (minute hour day-of-month month"#;
        ["schedule", "add", "n", "61 * * * *", "t"] => 1, r#"invalid cron expression "61 * * * *": its minute field "61" is not valid, expected 0-59; write 5 fields"#;
        ["schedule", "add", "n", "", "t"] => 1, r#"invalid cron expression "": it is empty; write 5 fields (minute hour day-of-month month day-of-week, e.g. "30"#;
        ["schedule", "add", "n", "* * * * *", "t", "--timezone", "Mars/Base"] => 1, r#"unknown time zone "Mars/Base": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"#;
        ["schedule", "add", "n", "* * * * *", "t", "--timezone", ""] => 1, r#"unknown time zone "": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"#;
        ["schedule", "add", "", "* * * * *", "t"] => 1, r#"invalid schedule name "": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g."#;
        ["schedule", "add", " n ", "* * * * *", "t"] => 1, r#"invalid schedule name " n ": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g."#;
        ["schedule", "add", "n", "* * * * *", ""] => 1, r#"invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["schedule", "add", "n", "* * * * *", "t", "--args", "{"] => 1, "--args is not valid JSON: EOF while parsing an object at line 1 column 1";
        ["schedule", "add", "n", "* * * * *", "t", "--notes", "[]"] => 1, "notes must be a JSON object";
        ["schedule", "add", "n", "* * * * *", "t", "--catch-up", "sometimes"] => 2, "invalid value 'sometimes' for '--catch-up <POLICY>'";
        ["schedule", "add", "n", "* * * * *", "t", "--attempts", "0"] => 1, "invalid option: attempts must be at least 1, got 0";
        ["schedule", "add", "n", "* * * * *", "t", "--priority", "x"] => 2, "invalid value 'x' for '--priority <N>'";
        ["schedule", "add", "n", "* * * * *", "t", "--queue", ""] => 1, r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["schedule", "add", "n", "* * * * *"] => 2, "the following required arguments were not provided";
        ["schedule", "show", "nothing"] => 1, r#"schedule "nothing" not found (see `underling schedule list`)"#;
        ["schedule", "show", "n", "--next", "-1"] => 2, "invalid value '-1' for '--next <N>'";
        ["schedule", "pause", "nothing"] => 1, r#"schedule "nothing" not found (see `underling schedule list`)"#;
        ["schedule", "resume", "nothing"] => 1, r#"schedule "nothing" not found (see `underling schedule list`)"#;
        ["schedule", "remove", "nothing"] => 1, r#"schedule "nothing" not found (see `underling schedule list`)"#;
        ["schedule", "run-now", "nothing"] => 1, r#"schedule "nothing" not found (see `underling schedule list`)"#;
        // workload.
        ["workload", "add", "w", "not-a-url"] => 1, r#"invalid option: workload "w": invalid url "not-a-url": relative URL without a base"#;
        ["workload", "add", "w", "ftp://example.com/x"] => 1, r#"invalid option: workload "w": invalid url "ftp://example.com/x": the scheme must be http or https"#;
        ["workload", "add", "w", "http://"] => 1, r#"invalid option: workload "w": invalid url "http://": empty host"#;
        ["workload", "add", "w", "http://example.com", "--mode", "bogus"] => 1, r#"invalid option: unknown workload mode "bogus": expected sync or async"#;
        ["workload", "add", "w", "http://example.com", "--mode", ""] => 2, "a value is required for '--mode <MODE>' but none was supplied";
        ["workload", "add", "w", "http://example.com", "--timeout", "5x"] => 2, "invalid value '5x' for '--timeout <DURATION>'";
        ["workload", "add", "w", "http://example.com", "--max-concurrency", "0"] => 1, r#"invalid option: workload "w": max_concurrency must be 1 to 10000, got 0"#;
        ["workload", "add", "w", "http://example.com", "--max-concurrency", "-1"] => 2, "invalid value '-1' for '--max-concurrency <N>'";
        ["workload", "add", "w", "http://example.com", "--header", "nocolon"] => 1, r#"a header is `Name: value`, got "nocolon""#;
        ["workload", "add", "w", "http://example.com", "--token-env", "1BAD"] => 1, r#"token_env: invalid environment variable name "1BAD""#;
        ["workload", "add", "w", "https://example.com", "--ca-file", ""] => 2, "a value is required for '--ca-file <FILE>' but none was supplied";
        ["workload", "add", "w", "http://example.com", "--ca-file", "{dir}/bad.json"] => 1, "ca_file is for https:// workloads only";
        ["workload", "add", "", "http://example.com"] => 1, r#"invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        ["workload", "add", "w", "http://example.com", "--max-response-bytes", "-1"] => 2, "invalid value '-1' for '--max-response-bytes <BYTES>'";
        ["workload", "show", "nothing"] => 1, r#"workload "nothing" not found"#;
        ["workload", "remove", "nothing"] => 1, r#"workload "nothing" not found"#;
        ["workload", "token", "w", "--token-env", "X", "--revoke"] => 2, "the argument '--token-env <VAR>' cannot be used with '--revoke'";
        // worker.
        ["worker", "command", "reboot"] => 1, r#"invalid remote command: unknown command "reboot": expected one of stop, kill, jobs, pause, resume"#;
        ["worker", "command", "jobs", "--args", r#"["x"]"#] => 1, r#"invalid remote command: jobs needs a number of jobs (0 or more) as its argument, e.g. [4], got ["x"]"#;
        ["worker", "command", "jobs", "--args", "{"] => 1, "--args is not valid JSON: EOF while parsing an object at line 1 column 1";
        ["worker", "command", "stop"] => 1, "invalid remote command: stop needs a job id as its argument, e.g. [42], got []";
        ["worker", "command", "pause", "999999"] => 1, "worker 999999 not found";
        ["worker", "command", "pause", "abc"] => 2, "invalid value 'abc' for '[ID]...'";
        ["worker", "show", "abc"] => 2, "invalid value 'abc' for '<ID>'";
        ["worker", "show", "999999"] => 1, "worker 999999 not found";
        // lock.
        ["lock", "acquire", "x", "--duration", "soon"] => 2, "invalid value 'soon' for '--duration <DURATION>'";
        ["lock", "acquire", "x", "--duration", "-1s"] => 2, "invalid value '-1s' for '--duration <DURATION>': a duration cannot be negative";
        ["lock", "acquire", "x", "--duration", "1m", "--limit", "0"] => 2, "invalid value '0' for '--limit <N>'";
        ["lock", "acquire", "x"] => 2, "the following required arguments were not provided";
        ["lock", "acquire", "", "--duration", "1m"] => 1, "invalid option: a lock name must not be empty";
        ["lock", "release", ""] => 1, "invalid option: a lock name must not be empty";
        // audit, repair, events, serve and the global flags.
        ["audit", "prune", "--older-than", "x"] => 2, "invalid value 'x' for '--older-than <DURATION>'";
        ["audit", "list", "--limit", "0"] => 2, "invalid value '0' for '--limit <LIMIT>'";
        ["audit", "list", "--job", "abc"] => 2, "invalid value 'abc' for '--job <ID>'";
        ["repair", "--batch", "0"] => 2, "invalid value '0' for '--batch <N>'";
        ["repair", "--missing-after", "soon"] => 2, "invalid value 'soon' for '--missing-after <DURATION>'";
        ["events", "--count", "x"] => 2, "invalid value 'x' for '--count <N>'";
        ["serve", "--listen", "nowhere"] => 2, "invalid value 'nowhere' for '--listen <ADDR>'";
        ["serve", "--body-limit", "0"] => 2, "invalid value '0' for '--body-limit <BYTES>'";
        ["--pool-size", "0", "stats"] => 2, "invalid value '0' for '--pool-size <N>'";
        ["--log-format", "xml", "stats"] => 2, "invalid value 'xml' for '--log-format <FORMAT>'";
        ["bogus"] => 2, "unrecognized subcommand 'bogus'";
        ["job"] => 2, "Usage:";
        ["stats", "extra"] => 2, "unexpected argument 'extra'";
    ]
}

/// The files the `{dir}` cases read.
const FILES: [(&str, &str); 6] = [
    ("bad.json", "{\"k\": }"),
    ("broken.jsonl", "{\"task\": \"t\"}\n{\"task\": \n"),
    ("array.jsonl", "[1, 2]\n"),
    ("empty-task.jsonl", "{\"task\": \"t\"}\n{\"task\": \"\"}\n"),
    ("unknown-field.jsonl", "{\"task\": \"t\", \"prio\": 1}\n"),
    (
        "bad-parent.jsonl",
        "{\"task\": \"t\", \"parents\": [999999]}\n",
    ),
];

async fn every_malformed_command_line_is_refused_clearly_and_writes_nothing(kind: Kind) {
    let Some(db) = TestDb::migrated(kind).await else {
        return;
    };
    let dir = db.dir.path().display().to_string();
    for (name, content) in FILES {
        std::fs::write(db.dir.path().join(name), content).expect("write a case's file");
    }
    let job = db.enqueue("seed", EnqueueOptions::new()).await.to_string();
    let failed = db.enqueue_many(1, "default", "seed").await;
    db.settle(
        &failed,
        Outcome::Failed {
            error: serde_json::json!("boom"),
            retry_delay: std::time::Duration::ZERO,
        },
    )
    .await;
    let failed = failed[0].to_string();
    let worker = db
        .register_worker("host", 1, serde_json::json!({}))
        .await
        .to_string();
    let fill = |text: &str| {
        text.replace("{job}", &job)
            .replace("{failed}", &failed)
            .replace("{worker}", &worker)
            .replace("{dir}", &dir)
    };
    let cases = cases();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected = fill(case.stderr);
        let before = row_counts(db.queue()).await;
        let run = db.run(&args);
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.chars().take(40).collect::<String>())
            .collect();
        let what = format!("{shown:?}");
        if run.code != case.code || !run.stderr.contains(&expected) || !run.stdout.is_empty() {
            failures.push(format!(
                "{what}: expected exit {} with {expected:?} on stderr, got exit {}\n  stdout: {:?}\n  stderr: {:?}",
                case.code, run.code, run.stdout, run.stderr
            ));
        }
        if run.code == 1 && run.stderr.lines().count() != 1 {
            failures.push(format!(
                "{what}: more than one line on stderr: {:?}",
                run.stderr
            ));
        }
        let after = row_counts(db.queue()).await;
        if after != before {
            failures.push(format!("{what}: rows changed from {before:?} to {after:?}"));
        }
    }
    assert_no_failures(&failures, cases.len());
}

#[tokio::test]
async fn sqlite_every_malformed_command_line_is_refused_clearly_and_writes_nothing() {
    every_malformed_command_line_is_refused_clearly_and_writes_nothing(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_every_malformed_command_line_is_refused_clearly_and_writes_nothing() {
    every_malformed_command_line_is_refused_clearly_and_writes_nothing(Kind::Postgres).await;
}

/// The words the fuzzed argument vectors are made of: every command and flag name, values
/// of the right and of the wrong kind, and arbitrary strings.
fn word() -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "job",
        "enqueue",
        "enqueue-batch",
        "list",
        "show",
        "wait",
        "retry",
        "remove",
        "purge",
        "stop",
        "kill",
        "queue",
        "pause",
        "resume",
        "fifo",
        "on",
        "off",
        "worker",
        "command",
        "lock",
        "acquire",
        "release",
        "limit",
        "set",
        "task",
        "schedule",
        "add",
        "run-now",
        "workload",
        "token",
        "stats",
        "history",
        "repair",
        "audit",
        "enable",
        "disable",
        "prune",
        "events",
        "migrate",
        "bench",
        "serve",
        "help",
        "--help",
        "-h",
        "--version",
        "--json",
        "--database",
        "--schema",
        "--pool-size",
        "--log-format",
        "--args",
        "--notes",
        "--queue",
        "--task",
        "--priority",
        "--attempts",
        "--delay",
        "--run-at",
        "--parent",
        "--lax",
        "--expire",
        "--unique-key",
        "--unique-by",
        "--unique-scope",
        "--unique-for",
        "--on-conflict",
        "--timeout",
        "--state",
        "--limit",
        "--offset",
        "--before",
        "--force",
        "--batch",
        "--older-than",
        "--rate",
        "--concurrency",
        "--key-from",
        "--timezone",
        "--catch-up",
        "--mode",
        "--header",
        "--duration",
        "--next",
        "--listen",
        "--count",
        "--",
        "-",
        "-1",
        "0",
        "1",
        "99999999999999999999",
        "5m",
        "-1s",
        "1001y",
        "{",
        "[]",
        "{}",
        "args.tenant",
        "100/0s",
        "* * * * *",
        "=",
        "--delay=",
        "--limit=-1",
    ];
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever the argument vector, the parser answers with a command or an error (a usage
    /// error, help or the version), never a panic.
    #[test]
    fn the_parser_never_panics_on_any_argument_vector(words in proptest::collection::vec(word(), 0..8)) {
        use clap::Parser;
        let argv = std::iter::once("underling".to_string()).chain(words);
        let _ = cli::Cli::try_parse_from(argv);
    }
}
