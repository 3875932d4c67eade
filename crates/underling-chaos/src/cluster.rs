//! A throw-away PostgreSQL cluster on a free port, in a directory of its own, that the chaos
//! run may stop and start as it likes without touching any other server. It is made with the
//! server's own `initdb` and `pg_ctl` (Debian's `postgresql` package; found under
//! `/usr/lib/postgresql/*/bin` or given), as the `postgres` user when run as root (PostgreSQL
//! refuses to run as root). Dropping it stops the server and removes the directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What went wrong with the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `pg_ctl` was found.
    #[error(
        "no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin: install Debian's postgresql package, or pass --pg-bin DIR"
    )]
    NoBinaries,
    /// A command could not be run or failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command, as run.
        command: String,
        /// Its exit status and output, or why it could not start.
        detail: String,
    },
    /// Files of the cluster could not be written.
    #[error("preparing {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A running throw-away cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Whether the server commands run as `postgres` (this process is root).
    as_postgres: bool,
}

impl Cluster {
    /// The newest server binaries installed, or `given`.
    pub fn binaries(given: Option<&Path>) -> Result<PathBuf, ClusterError> {
        if let Some(dir) = given {
            return Ok(dir.to_path_buf());
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| ClusterError::NoBinaries)?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("pg_ctl").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, bin)| bin)
            .ok_or(ClusterError::NoBinaries)
    }

    /// Makes a cluster in `dir` (which must not exist yet) listening on 127.0.0.1:`port`
    /// with trust authentication, and starts it. `fsync` is off: the run tests the queue, not
    /// the disk, and a stop with `-m immediate` still recovers from the WAL the OS holds.
    /// `synchronous_commit` stays on: off, a crash loses the last commits the server had
    /// already confirmed (a first run lost a batch of 10 enqueued jobs that way, and the
    /// verdict caught it).
    pub fn create(bin: &Path, dir: &Path, port: u16) -> Result<Cluster, ClusterError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClusterError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let cluster = Cluster {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            port,
            as_postgres,
        };
        if as_postgres {
            cluster.run(
                "chown",
                &["-R", "postgres:postgres", &cluster.dir_str()],
                false,
            )?;
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            true,
        )?;
        let conf = dir.join("data").join("postgresql.auto.conf");
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\n\
             max_connections = 300\nshared_buffers = '256MB'\n",
            cluster.dir_str()
        );
        std::fs::write(&conf, settings).map_err(io(&conf))?;
        cluster.start()?;
        Ok(cluster)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), ClusterError> {
        let log = format!("{}/server.log", self.dir_str());
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "start"],
            true,
        )
    }

    /// Stops the server as a crash would (`-m immediate`: no checkpoint, connections dropped
    /// at once; the next start recovers from the WAL).
    pub fn crash(&self) -> Result<(), ClusterError> {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            true,
        )
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir_str())
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Runs `program` (a server binary when `server`), as `postgres` when this process is root.
    fn run(&self, program: &str, args: &[&str], server: bool) -> Result<(), ClusterError> {
        let path = if server {
            self.bin.join(program).display().to_string()
        } else {
            program.to_string()
        };
        let mut command = if server && self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &path]);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        let shown = format!("{path} {}", args.join(" "));
        let output = command.output().map_err(|e| ClusterError::Command {
            command: shown.clone(),
            detail: e.to_string(),
        })?;
        if output.status.success() {
            return Ok(());
        }
        Err(ClusterError::Command {
            command: shown,
            detail: format!(
                "{}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.crash();
        // The server's processes are gone once pg_ctl returned; give the OS a moment to let
        // go of the files before they are removed.
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
