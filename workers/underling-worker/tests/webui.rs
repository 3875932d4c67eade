//! The web UI in a real browser: headless Chromium, driven through WebDriver (chromedriver,
//! started here on an ephemeral port), against an `underling serve` server (in this process, on
//! an ephemeral port, with a token) over a fresh PostgreSQL schema, with an `underling-worker`
//! process running the jobs. One browser session for every trial; trials run one after
//! another. Screenshots of each page go to `target/webui-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`;
//! `scripts/ensure-chromium.sh` installs them) and PostgreSQL: without them the trials are
//! skipped with a loud message, and fail under CI (`CI` set).
//!
//! `page_loads_with_a_million_jobs_in_the_store` is ignored by default (it builds a store of
//! a million jobs): `cargo test -p underling-worker --test webui -- --ignored` runs it.
//!
//! Long because each trial is a scenario in the browser; the helpers they share come first.

mod harness;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};
use underling::{EnqueueOptions, JobState, Queue, Stats};
use underling_server::{Server, ServerOptions};

use harness::{TestDb, Workers, wait_for};

const TOKEN: &str = "webui-full-token-0123456789";
const READ_ONLY: &str = "webui-read-only-token-9876543210";
/// The queues the worker process claims from; other queues keep their jobs waiting.
const SERVED: [&str; 1] = ["default"];
/// How long the UI may take to show something.
const UI_WAIT: Duration = Duration::from_secs(20);

/// The browser, the server and the worker every trial shares.
struct Env {
    db: TestDb,
    url: String,
    browser: Client,
    shots: PathBuf,
    loads: AtomicU64,
    _chromedriver: Killed,
    _workers: Workers,
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on loopback (bound, then released for chromedriver to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Skips (loudly) outside CI, fails under CI.
fn missing(what: &str) -> Option<Env> {
    if std::env::var_os("CI").is_some() {
        panic!("{what}: the browser tests must run in CI (scripts/ensure-chromium.sh installs it)");
    }
    eprintln!(
        "\n!!!! SKIPPING the web UI browser tests: {what}.\n\
         !!!! Install Debian's chromium and chromium-driver (bash scripts/ensure-chromium.sh) to run them.\n"
    );
    None
}

/// Starts chromedriver on a free port and opens a headless Chromium session on it.
async fn browser() -> Result<(Client, Killed), String> {
    let driver = find("chromedriver").ok_or("chromedriver is not installed")?;
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|p| find(p))
        .ok_or("chromium is not installed")?;
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("chromedriver does not start: {e}"))?;
    let child = Killed(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // Root in a container: no sandbox; small /dev/shm: use /tmp.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--disable-extensions", "--no-first-run"],
        }),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut last = String::new();
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(client) => return Ok((client, child)),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("no browser session from chromedriver: {last}"))
}

/// Where the screenshots go: `target/webui-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("webui-screenshots")
}

impl Env {
    async fn start() -> Option<Env> {
        let (browser, chromedriver) = match browser().await {
            Ok(pair) => pair,
            Err(e) => return missing(&e),
        };
        let db = TestDb::new("webui").await?;
        db.queue.enable_audit().await.expect("enable the audit log");
        let options = ServerOptions {
            listen: "127.0.0.1:0".parse().expect("an address"),
            token: Some(TOKEN.into()),
            read_only_token: Some(READ_ONLY.into()),
            ..ServerOptions::default()
        };
        // The server's own connections, as `underling serve` (a process of its own) has them:
        // its pool at the default size, beside the test's small one.
        let served =
            Queue::connect_with(underling::ConnectOptions::new(&db.url).schema(&db.schema))
                .await
                .expect("connect the server");
        let server = Server::bind(served, options).await.expect("bind");
        let url = format!("http://{}", server.local_addr().expect("an address"));
        tokio::spawn(server.run(std::future::pending()));
        let mut args = vec!["--jobs", "4", "--command-interval", "200ms"];
        for queue in SERVED {
            args.extend(["--queue", queue]);
        }
        let workers = Workers(vec![db.spawn_worker("worker", &args)]);
        wait_for(
            "the worker to register",
            UI_WAIT,
            Duration::from_millis(50),
            || async { (!db.queue.workers().await.ok()?.is_empty()).then_some(()) },
        )
        .await;
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).expect("create the screenshot directory");
        Some(Env {
            db,
            url,
            browser,
            shots,
            loads: AtomicU64::new(0),
            _chromedriver: chromedriver,
            _workers: workers,
        })
    }

    fn queue(&self) -> &Queue {
        &self.db.queue
    }

    /// Runs `script` in the page; its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.browser
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something other than null; that value.
    async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = std::time::Instant::now() + UI_WAIT;
        loop {
            if let Ok(value) = self.browser.execute(script, args.clone()).await
                && !value.is_null()
            {
                return value;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.page().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Loads the UI afresh at `hash` (a full page load) and waits until its data is shown;
    /// the load time the page measured (navigation start to data on screen), in ms.
    async fn open(&self, hash: &str) -> u64 {
        // A query string of its own makes every load a real one, not a fragment change.
        let n = self.loads.fetch_add(1, Ordering::Relaxed);
        self.browser
            .goto(&format!("{}/?load={n}{hash}", self.url))
            .await
            .expect("navigate");
        self.rendered().await
    }

    /// Waits for the current page's render to be done; the load time it measured.
    async fn rendered(&self) -> u64 {
        let value = self
            .until(
                "the page to show its data",
                "const m = document.querySelector('main[data-ready]');\
                 if (document.getElementById('login')) throw new Error('the login form is shown');\
                 return m ? Number(m.dataset.readyMs) : null;",
                vec![],
            )
            .await;
        value.as_u64().unwrap_or(0)
    }

    /// Runs `action` (a click, a form submit) that re-renders the page, and waits for the new
    /// render.
    async fn rerender(&self, action: impl std::future::Future<Output = ()>) {
        self.js(
            "document.getElementById('main').removeAttribute('data-ready'); return null;",
            vec![],
        )
        .await;
        action.await;
        self.rendered().await;
    }

    /// Logs in with the full token unless this browser has a session.
    async fn logged_in(&self) {
        self.browser.goto(&self.url).await.expect("navigate");
        let state = self
            .until(
                "the login form or the dashboard",
                "return document.getElementById('login') ? 'login' : (document.querySelector('main[data-ready]') ? 'ready' : null);",
                vec![],
            )
            .await;
        if state == "login" {
            self.login(TOKEN).await;
            self.rendered().await;
        }
    }

    /// Fills and sends the login form.
    async fn login(&self, token: &str) {
        let input = self.css("#token").await;
        input.clear().await.expect("clear");
        input.send_keys(token).await.expect("type");
        self.css("#login-submit")
            .await
            .click()
            .await
            .expect("submit");
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        let found = self
            .browser
            .wait()
            .at_most(UI_WAIT)
            .for_element(Locator::Css(selector))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("no element {selector}: {e}\n{}", self.page().await),
        }
    }

    /// Where the browser is and what it shows, for a failure message.
    async fn page(&self) -> String {
        let url = self.browser.current_url().await.map(|u| u.to_string());
        let text = self
            .browser
            .execute(
                "return [document.body ? document.body.innerText : '', \
                 performance.getEntriesByType('resource').map(e => `${e.name} ${Math.round(e.startTime)}..${Math.round(e.responseEnd)}`).slice(-12), \
                 document.getElementById('confirm').open, window.__log];",
                vec![],
            )
            .await;
        self.shot("failure").await;
        format!("page {url:?} shows:\n{text:?}")
    }

    async fn click(&self, selector: &str) {
        self.css(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {selector}: {e}"));
    }

    async fn text(&self, selector: &str) -> String {
        self.css(selector).await.text().await.expect("text")
    }

    /// Waits until the element's text is `expected` (live updates included).
    async fn wait_text(&self, selector: &str, expected: &str) {
        self.until(
            &format!("{selector} to read {expected:?}"),
            "const e = document.querySelector(arguments[0]); return e && e.textContent === arguments[1] ? true : null;",
            vec![json!(selector), json!(expected)],
        )
        .await;
    }

    /// Accepts the confirmation dialog; the message the page then shows.
    async fn confirm(&self) -> String {
        self.css("dialog#confirm[open]").await;
        self.clear_flash().await;
        self.js("window.__log = []; const f = window.fetch; window.fetch = (...a) => { __log.push('start ' + a[0]); return f(...a).then(r => { __log.push('done ' + r.status); return r; }, e => { __log.push('err ' + e); throw e; }); }; document.getElementById('confirm').addEventListener('close', () => __log.push('close ' + document.getElementById('confirm').returnValue)); return null;", vec![]).await;
        self.click("#confirm-ok").await;
        self.flash().await
    }

    /// Clears the result message, so that the next one is not taken for an earlier one.
    async fn clear_flash(&self) {
        self.js(
            "document.getElementById('flash').replaceChildren(); return null;",
            vec![],
        )
        .await;
    }

    /// The result message the page shows (waits for one).
    async fn flash(&self) -> String {
        self.until(
            "a result message",
            "const p = document.querySelector('#flash p'); return p ? p.textContent : null;",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a screenshot as `target/webui-screenshots/{name}.png`.
    async fn shot(&self, name: &str) {
        let png = self.browser.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    /// Whether an injected script ran.
    async fn pwned(&self) -> bool {
        self.js("return window.__pwned !== undefined;", vec![])
            .await
            == json!(true)
    }

    /// Enqueues a job.
    async fn enqueue(&self, task: &str, args: Value, queue: &str) -> i64 {
        self.queue()
            .enqueue(task, args, EnqueueOptions::new().queue(queue))
            .await
            .expect("enqueue")
    }

    /// Waits until the job is in `state` in the store.
    async fn job_in(&self, id: i64, state: JobState) -> underling::Job {
        wait_for(
            &format!("job {id} to be {state}"),
            UI_WAIT,
            Duration::from_millis(50),
            || async {
                self.queue()
                    .job(id)
                    .await
                    .ok()?
                    .filter(|j| j.state == state)
            },
        )
        .await
    }

    /// The ids of the rows of the jobs table.
    async fn listed(&self) -> Vec<i64> {
        let ids = self
            .js(
                "return [...document.querySelectorAll('#jobs tbody tr')].map(r => Number(r.dataset.job));",
                vec![],
            )
            .await;
        serde_json::from_value(ids).expect("ids")
    }
}

// ---------------------------------------------------------------------------------------------
// Trials

async fn a_wrong_token_is_refused_and_the_token_opens_the_dashboard(env: &Env) {
    env.browser.delete_all_cookies().await.expect("no session");
    env.browser.goto(&env.url).await.expect("navigate");
    env.css("#login").await;
    env.shot("01-login").await;
    env.login("not-the-token").await;
    assert_eq!(
        env.text("#login-error").await,
        "That token is not valid for this server."
    );
    env.login(TOKEN).await;
    env.rendered().await;
    assert_eq!(env.text("main h1").await, "Dashboard");
    let cookies = env.browser.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "underling_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    // (fantoccini does not re-export the cookie crate's SameSite.)
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert_eq!(
        env.js("return document.cookie;", vec![]).await,
        json!(""),
        "the page's script cannot read the session"
    );
}

async fn the_dashboard_counts_match_the_store(env: &Env) {
    env.logged_in().await;
    for n in 0..3 {
        env.enqueue("report.build", json!({"n": n}), "parked").await;
    }
    let finished = env.enqueue("underling.echo", json!({}), "default").await;
    env.job_in(finished, JobState::Finished).await;
    env.queue()
        .lock("dashboard-lock", Duration::from_secs(600), 1)
        .await
        .expect("lock");
    let stats = || async {
        Stats {
            uptime: None,
            ..env.queue().stats().await.expect("stats")
        }
    };
    // Finished and failed jobs over the last hour's minutes, as the store counts them.
    let per_minute = || async {
        let minutes = env.queue().history_minutes().await.expect("minutes");
        assert_eq!(minutes.len(), 60);
        minutes
            .iter()
            .fold((0, 0), |(f, x), m| (f + m.finished, x + m.failed))
    };
    // The store must hold still while the page reads it (the worker may be settling a job of
    // an earlier trial): read it before and after, and compare when both agree.
    for attempt in 0.. {
        let before = stats().await;
        let minutes_before = per_minute().await;
        let ms = env.open("#/").await;
        let shown = env
            .js(
                "const n = id => Number(document.getElementById(id).dataset.count);\
                 return ['inactive','active','finished','failed','delayed','workers','locks'].map(k => n('count-' + k));",
                vec![],
            )
            .await;
        let bars: Vec<(u64, u64)> = serde_json::from_value(
            env.js(
                "return [...document.querySelectorAll('#chart-minutes svg g.bar')].map(g => [Number(g.dataset.finished), Number(g.dataset.failed)]);",
                vec![],
            )
            .await,
        )
        .expect("bars");
        let after = stats().await;
        let minutes_after = per_minute().await;
        if (before != after || minutes_before != minutes_after) && attempt < 5 {
            continue;
        }
        assert_eq!(bars.len(), 60, "one bar a minute for the last hour");
        let charted = bars.iter().fold((0, 0), |(f, x), b| (f + b.0, x + b.1));
        assert_eq!(charted, minutes_before);
        assert!(charted.0 >= 1, "the job finished in this trial is charted");
        let workers = env.queue().workers().await.expect("workers").len() as u64;
        assert_eq!(
            shown,
            json!([
                before.inactive_jobs,
                before.active_jobs,
                before.finished_jobs,
                before.failed_jobs,
                before.delayed_jobs,
                workers,
                before.active_locks
            ])
        );
        assert!(before.inactive_jobs >= 3 && before.finished_jobs >= 1 && before.active_locks >= 1);
        eprintln!("dashboard loaded in {ms} ms");
        break;
    }
    let parked = env
        .js(
            "const r = document.querySelector('#queues tr[data-queue=\"parked\"]'); return r ? [...r.cells].map(c => c.textContent) : null;",
            vec![],
        )
        .await;
    let queue = env
        .queue()
        .queues()
        .await
        .expect("queues")
        .into_iter()
        .find(|q| q.name == "parked")
        .expect("the queue");
    assert_eq!(parked[2], json!(queue.inactive.to_string()));
    env.shot("02-dashboard").await;
    env.queue().unlock("dashboard-lock").await.expect("unlock");
}

async fn filtering_jobs_by_state_queue_and_task_lists_exactly_the_matching_jobs(env: &Env) {
    env.logged_in().await;
    let a = env.enqueue("report.build", json!({}), "filter-q").await;
    let b = env.enqueue("report.send", json!({}), "filter-q").await;
    let c = env.enqueue("report.build", json!({}), "filter-q").await;
    let elsewhere = env.enqueue("report.build", json!({}), "parked").await;
    env.open("#/jobs").await;
    assert!(env.listed().await.contains(&elsewhere));
    env.css("#filter-state")
        .await
        .select_by_value("inactive")
        .await
        .expect("select");
    env.css("#filter-queue")
        .await
        .send_keys("filter-q")
        .await
        .expect("type");
    env.rerender(async { env.click("#apply-filters").await })
        .await;
    assert_eq!(env.listed().await, vec![c, b, a]);
    assert_eq!(env.text("#total").await, "3 job(s) match");
    env.css("#filter-task")
        .await
        .send_keys("report.build")
        .await
        .expect("type");
    // Enter in a field submits the filters: the keyboard is enough.
    env.rerender(async {
        env.css("#filter-task")
            .await
            .send_keys("\u{E007}")
            .await
            .expect("enter");
    })
    .await;
    assert_eq!(env.listed().await, vec![c, a]);
    env.shot("03-jobs-filtered").await;
}

async fn a_job_page_shows_the_result_args_and_attempts_of_a_finished_job(env: &Env) {
    env.logged_in().await;
    let id = env
        .enqueue("underling.echo", json!({"hello": "world"}), "default")
        .await;
    let job = env.job_in(id, JobState::Finished).await;
    let ms = env.open(&format!("#/jobs/{id}")).await;
    eprintln!("job page loaded in {ms} ms");
    assert_eq!(env.text("#job-state").await, "finished");
    assert_eq!(
        env.text("#job-result").await,
        "{\n  \"hello\": \"world\"\n}"
    );
    assert_eq!(env.text("#job-args").await, "{\n  \"hello\": \"world\"\n}");
    let attempts = env
        .js(
            "return [...document.querySelectorAll('#attempts tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent, r.cells[4].textContent]);",
            vec![],
        )
        .await;
    let worker = job.worker_id.expect("a worker").to_string();
    assert_eq!(attempts, json!([["1", worker, "finished"]]));
    env.shot("04-job-finished").await;
}

async fn retrying_a_failed_job_shows_it_finish_live(env: &Env) {
    env.logged_in().await;
    let id = env
        .enqueue("underling.sleep", json!({"ms": 1500}), "default")
        .await;
    env.job_in(id, JobState::Active).await;
    env.queue().stop_job(id, false).await.expect("stop");
    env.job_in(id, JobState::Failed).await;
    env.open(&format!("#/jobs/{id}")).await;
    assert_eq!(env.text("#job-state").await, "failed");
    env.click("#job-retry").await;
    assert_eq!(env.confirm().await, format!("Job #{id} retried."));
    // No reload from here on: the page follows the job through the event stream.
    env.wait_text("#job-state", "finished").await;
    assert_eq!(env.text("#job-result").await, "{\n  \"slept_ms\": 1500\n}");
    let outcomes = env
        .js(
            "return [...document.querySelectorAll('#attempts tbody tr')].map(r => r.cells[4].textContent);",
            vec![],
        )
        .await;
    assert_eq!(outcomes, json!(["failed", "finished"]));
    assert_eq!(
        env.queue()
            .job(id)
            .await
            .expect("job")
            .expect("exists")
            .state,
        JobState::Finished
    );
    env.shot("05-job-retried-finished").await;
}

async fn paused(env: &Env, queue: &str) -> bool {
    env.queue()
        .queues()
        .await
        .expect("queues")
        .iter()
        .any(|q| q.name == queue && q.paused)
}

async fn pausing_and_resuming_a_queue_sets_its_flag_in_the_store(env: &Env) {
    env.logged_in().await;
    env.enqueue("report.build", json!({}), "pause-q").await;
    env.open("#/queues").await;
    env.click("tr[data-queue=\"pause-q\"] .queue-pause").await;
    assert_eq!(env.confirm().await, "Queue pause-q paused.");
    assert!(paused(env, "pause-q").await);
    env.wait_text("tr[data-queue=\"pause-q\"] td.paused", "paused")
        .await;
    env.shot("06-queues-paused").await;
    env.click("tr[data-queue=\"pause-q\"] .queue-resume").await;
    assert_eq!(env.confirm().await, "Queue pause-q resumed.");
    assert!(!paused(env, "pause-q").await);
    env.wait_text("tr[data-queue=\"pause-q\"] td.paused", "running")
        .await;
}

async fn an_action_cancelled_from_the_keyboard_changes_nothing(env: &Env) {
    env.logged_in().await;
    env.enqueue("report.build", json!({}), "cancel-q").await;
    env.open("#/queues").await;
    env.click("tr[data-queue=\"cancel-q\"] .queue-pause").await;
    env.css("dialog#confirm[open]").await;
    // The focus is on Cancel; Escape closes the dialog without confirming.
    let focused = env.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("confirm-cancel"));
    env.clear_flash().await;
    env.css("#confirm-cancel")
        .await
        .send_keys("\u{E00C}")
        .await
        .expect("escape");
    assert_eq!(env.flash().await, "Cancelled: nothing was changed.");
    assert!(!paused(env, "cancel-q").await);
}

async fn stopping_a_running_job_fails_it_and_the_page_shows_it(env: &Env) {
    env.logged_in().await;
    let id = env
        .enqueue("underling.sleep", json!({"ms": 60000}), "default")
        .await;
    env.job_in(id, JobState::Active).await;
    env.open(&format!("#/jobs/{id}")).await;
    assert_eq!(env.text("#job-state").await, "active");
    env.shot("07-job-running").await;
    env.click("#job-stop").await;
    let message = env.confirm().await;
    assert!(
        message.starts_with("Stop sent to worker ")
            && message.ends_with(&format!("for job #{id}.")),
        "{message}"
    );
    let job = env.job_in(id, JobState::Failed).await;
    assert_eq!(job.result, Some(json!("Job was stopped")));
    // No reload: the page follows the job through the event stream.
    env.wait_text("#job-state", "failed").await;
}

async fn killing_a_running_job_fails_it_at_once_and_the_page_shows_it(env: &Env) {
    env.logged_in().await;
    let id = env
        .enqueue("underling.sleep", json!({"ms": 60000}), "default")
        .await;
    env.job_in(id, JobState::Active).await;
    env.open(&format!("#/jobs/{id}")).await;
    env.click("#job-kill").await;
    let message = env.confirm().await;
    assert!(
        message.starts_with("Kill sent to worker ")
            && message.ends_with(&format!("for job #{id}.")),
        "{message}"
    );
    let job = env.job_in(id, JobState::Failed).await;
    assert_eq!(job.result, Some(json!("Job was killed")));
    env.wait_text("#job-state", "failed").await;
    env.shot("17-job-killed").await;
}

/// The race behind a once-missed live update: after an action the job page reads the job
/// again, and the job changed (its `failed` event arrived) while that read was on its way back
/// with the record from before. The page must still end up showing the change. The read is
/// held in the page until the change has happened and its event was sent, so that the
/// interleaving is certain, not left to timing.
async fn a_job_page_shows_a_change_that_happens_while_it_reads_the_job(env: &Env) {
    env.logged_in().await;
    for attempt in 1.. {
        let id = env
            .enqueue("underling.sleep", json!({"ms": 60000}), "default")
            .await;
        env.job_in(id, JobState::Active).await;
        env.open(&format!("#/jobs/{id}")).await;
        // The page follows events from here on.
        env.wait_text("#live", "live").await;
        // Hold the next read of this job until the test lets it go; note what it read. A
        // stream of the test's own notes when the job's `failed` event reaches the browser.
        env.js(
            "const id = arguments[0], path = `/api/v1/jobs/${id}`, real = window.fetch;\
             window.__held = []; let armed = true; window.__failed = false; window.__probing = false;\
             window.__probe = new EventSource('/api/v1/events?event=failed');\
             window.__probe.onopen = () => { window.__probing = true; };\
             window.__probe.addEventListener('failed', (e) => { if (JSON.parse(e.data).job.id === id) window.__failed = true; });\
             const gate = new Promise((r) => { window.__release = r; });\
             window.fetch = (url, opts) => {\
               const answer = real(url, opts);\
               if (!armed || String(url) !== path || (opts && opts.method && opts.method !== 'GET')) return answer;\
               armed = false;\
               return answer.then((r) => r.clone().json().then((j) => { window.__held.push(j.state); return gate.then(() => r); }));\
             };\
             return null;",
            vec![json!(id)],
        )
        .await;
        env.until(
            "the test's stream to open",
            "return window.__probing ? true : null;",
            vec![],
        )
        .await;
        env.click("#job-stop").await;
        let message = env.confirm().await;
        assert!(message.starts_with("Stop sent to worker "), "{message}");
        let held = env
            .until(
                "the page to read the job again",
                "return window.__held.length ? window.__held[0] : null;",
                vec![],
            )
            .await;
        env.job_in(id, JobState::Failed).await;
        env.until(
            "the job's failed event to reach the browser",
            "return window.__failed ? true : null;",
            vec![],
        )
        .await;
        env.js(
            "window.__probe.close(); window.__release(); return null;",
            vec![],
        )
        .await;
        if held != json!("active") {
            // The worker stopped the job before the server answered the read: no race this
            // time. Try again with a new job.
            assert!(attempt < 5, "the read never came before the change");
            continue;
        }
        env.wait_text("#job-state", "failed").await;
        break;
    }
}

async fn the_queues_page_shows_what_each_queue_finished_and_failed_in_the_last_hour(env: &Env) {
    env.logged_in().await;
    for _ in 0..2 {
        let id = env.enqueue("underling.echo", json!({}), "default").await;
        env.job_in(id, JobState::Finished).await;
    }
    let failed = env
        .enqueue("underling.fail", json!({"message": "no"}), "default")
        .await;
    env.job_in(failed, JobState::Failed).await;
    let stored = || async {
        env.queue()
            .throughput()
            .await
            .expect("throughput")
            .into_iter()
            .find(|t| t.queue == "default")
            .map(|t| (t.finished_last_hour, t.failed_last_hour))
    };
    // As for the dashboard: compare when the store held still while the page read it.
    for attempt in 0.. {
        let before = stored().await;
        env.open("#/queues").await;
        let shown = env
            .js(
                "const r = document.querySelector('#queues tr[data-queue=\"default\"]');\
                 return [Number(r.querySelector('[data-finished]').dataset.finished), Number(r.querySelector('[data-failed]').dataset.failed)];",
                vec![],
            )
            .await;
        if before != stored().await && attempt < 5 {
            continue;
        }
        let (finished, failed) = before.expect("jobs ended in the default queue");
        assert_eq!(shown, json!([finished, failed]));
        assert!(
            finished >= 2 && failed >= 1,
            "{finished} finished, {failed} failed"
        );
        break;
    }
    env.shot("16-queues-throughput").await;
}

async fn releasing_a_lock_removes_its_hold(env: &Env) {
    env.logged_in().await;
    env.queue()
        .lock("nightly-report", Duration::from_secs(3600), 1)
        .await
        .expect("lock");
    env.open("#/locks").await;
    env.shot("08-locks").await;
    env.click("tr[data-lock=\"nightly-report\"] .lock-release")
        .await;
    assert_eq!(
        env.confirm().await,
        "Lock nightly-report: a hold was released."
    );
    assert!(
        env.queue()
            .locks(&["nightly-report".to_string()])
            .await
            .expect("locks")
            .is_empty()
    );
    env.css("#no-locks").await;
}

async fn hostile_names_args_notes_and_errors_render_as_inert_text(env: &Env) {
    env.logged_in().await;
    let task = "<script>window.__pwned=1</script>";
    let queue = "\"><img src=x onerror=\"window.__pwned=2\">";
    let args = json!({"x": "<script>window.__pwned=3</script>", "y": "\"><img src=x onerror=window.__pwned=4>"});
    let hostile = env
        .queue()
        .enqueue(
            task,
            args.clone(),
            EnqueueOptions::new().queue(queue).notes(
                json!({"<img src=x onerror=window.__pwned=5>": "<svg onload=window.__pwned=6>"}),
            ),
        )
        .await
        .expect("enqueue");
    let error = "<img src=x onerror=window.__pwned=7>";
    let failed = env
        .enqueue("underling.fail", json!({"message": error}), "default")
        .await;
    env.job_in(failed, JobState::Failed).await;
    let injected = "return document.querySelectorAll('main img, main script, main iframe, main [onerror], main [onload]').length;";
    for page in [
        "#/".to_string(),
        "#/jobs".to_string(),
        "#/queues".to_string(),
        format!("#/jobs?queue={}", encode(queue)),
        format!("#/jobs/{hostile}"),
        format!("#/jobs/{failed}"),
    ] {
        env.open(&page).await;
        // Give an injected handler (an image that fails to load) time to fire.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!env.pwned().await, "a script ran on {page}");
        assert_eq!(
            env.js(injected, vec![]).await,
            json!(0),
            "markup was made on {page}"
        );
    }
    env.open(&format!("#/jobs/{hostile}")).await;
    assert_eq!(
        env.text("#job-args").await,
        serde_json::to_string_pretty(&args).expect("json")
    );
    assert!(
        env.text("main h1")
            .await
            .starts_with(&format!("Job {hostile}"))
    );
    assert!(env.text("#job-fields").await.contains(task));
    assert!(
        env.text("#job-notes")
            .await
            .contains("<svg onload=window.__pwned=6>")
    );
    env.shot("09-hostile-job").await;
    env.open(&format!("#/jobs/{failed}")).await;
    assert_eq!(
        env.text("#job-result").await,
        serde_json::to_string_pretty(&json!(error)).expect("json")
    );
    assert!(!env.pwned().await);
}

async fn a_read_only_login_shows_the_pages_with_every_action_disabled(env: &Env) {
    let id = env.enqueue("report.build", json!({}), "parked").await;
    env.browser.delete_all_cookies().await.expect("log out");
    env.browser.goto(&env.url).await.expect("navigate");
    env.css("#login").await;
    env.login(READ_ONLY).await;
    env.rendered().await;
    env.open(&format!("#/jobs/{id}")).await;
    for button in ["#job-retry", "#job-stop", "#job-kill", "#job-remove"] {
        let disabled = env.css(button).await.attr("disabled").await.expect("attr");
        assert!(
            disabled.is_some(),
            "{button} is enabled for a read-only login"
        );
    }
    env.open("#/jobs").await;
    assert!(
        env.css("#bulk-retry")
            .await
            .attr("disabled")
            .await
            .expect("attr")
            .is_some()
    );
    env.browser.delete_all_cookies().await.expect("log out");
}

async fn at_phone_width_the_pages_do_not_scroll_sideways(env: &Env) {
    env.logged_in().await;
    env.browser.set_window_size(390, 844).await.expect("resize");
    for (page, name) in [
        ("#/", "10-phone-dashboard"),
        ("#/jobs", "11-phone-jobs"),
        ("#/queues", "12-phone-queues"),
    ] {
        env.open(page).await;
        let overflow = env
            .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
            .await;
        env.shot(name).await;
        assert_eq!(overflow, json!(0), "{page} scrolls sideways at 390 px");
    }
    env.browser
        .set_window_size(1280, 900)
        .await
        .expect("resize");
}

/// Selects the rows of these jobs on the jobs page.
async fn pick(env: &Env, ids: &[i64]) {
    for id in ids {
        env.click(&format!("tr[data-job=\"{id}\"] .pick")).await;
    }
}

/// Waits until the jobs table lists exactly `ids`.
async fn until_listed(env: &Env, ids: &[i64]) {
    wait_for(
        &format!("the jobs table to list {ids:?}"),
        UI_WAIT,
        Duration::from_millis(50),
        || async { (env.listed().await == ids).then_some(()) },
    )
    .await;
}

async fn bulk_remove_removes_the_selected_jobs_only(env: &Env) {
    env.logged_in().await;
    let a = env.enqueue("report.build", json!({}), "bulk-q").await;
    let b = env.enqueue("report.build", json!({}), "bulk-q").await;
    let c = env.enqueue("report.build", json!({}), "bulk-q").await;
    env.open("#/jobs?queue=bulk-q").await;
    assert_eq!(env.listed().await, vec![c, b, a]);
    pick(env, &[a, c]).await;
    env.click("#bulk-remove").await;
    assert_eq!(env.confirm().await, "Removed 2 job(s).");
    until_listed(env, &[b]).await;
    for id in [a, c] {
        assert!(env.queue().job(id).await.expect("job").is_none());
    }
    assert!(env.queue().job(b).await.expect("job").is_some());
}

async fn bulk_retry_retries_the_selected_failed_jobs_only(env: &Env) {
    env.logged_in().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = env
            .enqueue(
                "underling.fail",
                json!({"message": format!("bulk {n}")}),
                "default",
            )
            .await;
        env.job_in(id, JobState::Failed).await;
        ids.push(id);
    }
    env.open("#/jobs?state=failed&task=underling.fail").await;
    pick(env, &[ids[0], ids[2]]).await;
    env.click("#bulk-retry").await;
    assert_eq!(env.confirm().await, "Retried 2 job(s).");
    for (id, retries) in [(ids[0], 1), (ids[1], 0), (ids[2], 1)] {
        let job = wait_for(
            &format!("job {id} to have {retries} retries and be failed"),
            UI_WAIT,
            Duration::from_millis(50),
            || async {
                env.queue()
                    .job(id)
                    .await
                    .ok()?
                    .filter(|j| j.retries == retries && j.state == JobState::Failed)
            },
        )
        .await;
        assert_eq!(job.retries, retries);
    }
}

async fn the_workers_page_lists_every_registered_worker(env: &Env) {
    env.logged_in().await;
    env.open("#/workers").await;
    let ids: Vec<i64> = env
        .queue()
        .workers()
        .await
        .expect("workers")
        .iter()
        .map(|w| w.id)
        .collect();
    let shown = env
        .js(
            "return [...document.querySelectorAll('#workers tbody tr')].map(r => Number(r.dataset.worker));",
            vec![],
        )
        .await;
    assert_eq!(shown, json!(ids));
    env.shot("13-workers").await;
    env.open("#/history").await;
    env.shot("14-history").await;
}

/// Percent-encodes a value for a URL's query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The page loads of the dashboard, the jobs list and a job page with a million jobs in the
/// store (the big store of `underling bench --scale`, at 900,000 finished, 50,000 waiting and
/// 50,000 delayed jobs): the median of 5 loads each, reported, not asserted.
async fn page_loads_with_a_million_jobs_in_the_store(env: &Env) {
    let Some(db) = TestDb::new("webui_scale").await else {
        return;
    };
    let started = std::time::Instant::now();
    underling_bench::fill_big_store(&db.queue, 900_000, 50_000, 50_000, &|step| {
        eprintln!("  {step}")
    })
    .await
    .expect("build the big store");
    eprintln!(
        "built 1,000,000 jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = Server::bind(
        db.queue.clone(),
        ServerOptions {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..ServerOptions::default()
        },
    )
    .await
    .expect("bind");
    let url = format!("http://{}", server.local_addr().expect("an address"));
    let task = tokio::spawn(server.run(std::future::pending()));
    let some = db
        .queue
        .list_jobs_before(&underling::JobFilter::default(), None, 1)
        .await
        .expect("a job")
        .jobs[0]
        .id;
    let mut report = Vec::new();
    for hash in [
        "#/".to_string(),
        "#/jobs".to_string(),
        format!("#/jobs/{some}"),
        "#/queues".to_string(),
    ] {
        let mut times = Vec::new();
        for n in 0..6 {
            env.browser
                .goto(&format!("{url}/?load={n}{hash}"))
                .await
                .expect("navigate");
            let ms = env.rendered().await;
            // The first load warms the database's caches and the browser's.
            if n > 0 {
                times.push(ms);
            }
        }
        times.sort_unstable();
        report.push((hash, times[times.len() / 2], times));
    }
    env.shot("15-dashboard-1m-jobs").await;
    eprintln!(
        "\npage loads with 1,000,000 jobs in the store (navigation start to data on screen):"
    );
    for (hash, median, times) in report {
        eprintln!("  {hash:<14} median {median} ms  (loads: {times:?})");
    }
    task.abort();
    db.cleanup().await;
}

// ---------------------------------------------------------------------------------------------

type Scenario =
    for<'a> fn(&'a Env) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

macro_rules! scenario {
    ($name:ident) => {{
        fn boxed(env: &Env) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
            Box::pin($name(env))
        }
        (stringify!($name), boxed as Scenario)
    }};
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        vec![$(scenario!($name)),*]
    };
}

fn main() {
    let mut args = Arguments::from_args();
    // One browser: one trial at a time.
    args.test_threads = Some(1);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime"),
    );
    let scenarios: Vec<(&str, Scenario)> = scenarios![
        a_wrong_token_is_refused_and_the_token_opens_the_dashboard,
        the_dashboard_counts_match_the_store,
        filtering_jobs_by_state_queue_and_task_lists_exactly_the_matching_jobs,
        a_job_page_shows_the_result_args_and_attempts_of_a_finished_job,
        retrying_a_failed_job_shows_it_finish_live,
        pausing_and_resuming_a_queue_sets_its_flag_in_the_store,
        an_action_cancelled_from_the_keyboard_changes_nothing,
        stopping_a_running_job_fails_it_and_the_page_shows_it,
        a_job_page_shows_a_change_that_happens_while_it_reads_the_job,
        killing_a_running_job_fails_it_at_once_and_the_page_shows_it,
        the_queues_page_shows_what_each_queue_finished_and_failed_in_the_last_hour,
        releasing_a_lock_removes_its_hold,
        hostile_names_args_notes_and_errors_render_as_inert_text,
        bulk_remove_removes_the_selected_jobs_only,
        bulk_retry_retries_the_selected_failed_jobs_only,
        the_workers_page_lists_every_registered_worker,
        a_read_only_login_shows_the_pages_with_every_action_disabled,
        at_phone_width_the_pages_do_not_scroll_sideways,
    ];
    let wanted = |name: &str| {
        args.filter.as_deref().is_none_or(|f| {
            if args.exact {
                name == f
            } else {
                name.contains(f)
            }
        })
    };
    let needed =
        scenarios.iter().any(|(name, _)| wanted(name)) || args.ignored || args.include_ignored;
    // Nothing is started for `--list` or a filter that matches no trial.
    let env = if needed && !args.list {
        runtime.block_on(Env::start()).map(Arc::new)
    } else {
        None
    };
    let mut trials = Vec::new();
    let run = |name: &'static str, scenario: Scenario, ignored: bool| {
        let env = env.clone();
        let runtime = runtime.clone();
        Trial::test(name, move || {
            let Some(env) = env else {
                return Ok(());
            };
            runtime.block_on(scenario(&env));
            Ok::<(), Failed>(())
        })
        .with_ignored_flag(ignored)
    };
    for (name, scenario) in scenarios {
        trials.push(run(name, scenario, false));
    }
    let (name, scenario) = scenario!(page_loads_with_a_million_jobs_in_the_store);
    trials.push(run(name, scenario, true));
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(env) = env
        && let Ok(env) = Arc::try_unwrap(env)
    {
        runtime.block_on(async move {
            let _ = env.browser.clone().close().await;
            env.db.cleanup().await;
        });
    }
    conclusion.exit();
}
