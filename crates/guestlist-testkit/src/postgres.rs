//! A real PostgreSQL server for tests (issue 13 §3: "a real PostgreSQL server that the tests
//! start themselves: `initdb` and `pg_ctl` in a temp dir, on a free port, as an unprivileged
//! user when run as root").
//!
//! [`Cluster::start`] runs Debian's `initdb` (the newest `/usr/lib/postgresql/<major>/bin`, major
//! ≥ 14, or `$GUESTLIST_PG_BIN_DIR`) in a fresh temp dir and starts the server with `pg_ctl`,
//! listening on a free port of 127.0.0.1 and on a unix socket in the temp dir, with
//! `fsync=on` and `synchronous_commit=on` (a commit is on disk before it is acknowledged, as in
//! production). When the tests run as root, every PostgreSQL program runs as the unprivileged
//! user `postgres` (`runuser`), which owns the temp dir. TCP logins use `scram-sha-256`
//! passwords: [`Cluster::fresh_database`] creates a database owned by the ordinary (not
//! superuser) role `guestlist` and returns its `postgres://guestlist:…@127.0.0.1:<port>/<db>`
//! URL; [`Cluster::superuser_url`] gives the `postgres` superuser's, for tests that need to act
//! on other sessions (`pg_terminate_backend`).
//!
//! Clean-up: each cluster has a watchdog shell process whose standard input is a pipe held by
//! the [`Cluster`]. When the pipe closes — the `Cluster` is dropped, or the test process exits
//! or is killed, which also covers [`Cluster::shared`]'s cluster that lives in a static — the
//! watchdog runs `pg_ctl stop -m immediate` and removes the temp dir. No server outlives its test
//! binary.
//!
//! Missing binaries are an error naming the fix ("run scripts/setup.sh"), never a skipped test.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The ordinary role that owns the databases of [`Cluster::fresh_database`].
pub const APP_ROLE: &str = "guestlist";

/// A running PostgreSQL server in a temp dir (module docs). Dropping it stops the server
/// (`pg_ctl stop -m immediate`) and removes the dir.
pub struct Cluster {
    /// The temp dir: `data/` (the cluster), `sock/` (the unix socket), `postgres.log`.
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The unprivileged user the programs run as, when the tests run as root.
    run_as: Option<String>,
    /// The password of both `postgres` and [`APP_ROLE`] (random per cluster).
    password: String,
    next_db: AtomicU32,
    /// The watchdog's standard input (module docs); `None` once dropped.
    watchdog_in: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Option<Child>>,
}

/// The newest PostgreSQL (≥ 14) binaries directory: `$GUESTLIST_PG_BIN_DIR`, else the highest
/// `/usr/lib/postgresql/<major>/bin` holding `initdb` and `pg_ctl`.
///
/// Errors: none found (the message says to run `scripts/setup.sh`).
pub fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("GUESTLIST_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
        return Err(format!(
            "GUESTLIST_PG_BIN_DIR={} holds no initdb/pg_ctl",
            dir.display()
        ));
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in entries.flatten() {
            let Some(major) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let bin = e.path().join("bin");
            if major >= 14
                && bin.join("initdb").is_file()
                && bin.join("pg_ctl").is_file()
                && best.as_ref().is_none_or(|(m, _)| major > *m)
            {
                best = Some((major, bin));
            }
        }
    }
    best.map(|(_, b)| b).ok_or_else(|| {
        "PostgreSQL 14 or later is not installed (no /usr/lib/postgresql/<major>/bin/initdb): \
         run scripts/setup.sh (it installs Debian's postgresql package)"
            .to_owned()
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn random_hex(bytes: usize) -> String {
    // Not a secret worth a CSPRNG dependency: a per-cluster test password, unique per process
    // and time so two clusters never share one.
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < bytes * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(bytes * 2);
    out
}

/// Whether this process runs as root (uid 0), read from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of `user` (`id -u`, `id -g`).
fn ids_of(user: &str) -> Result<(u32, u32), String> {
    let get = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| format!("id {flag} {user}: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "there is no user {user:?} to run PostgreSQL as (root may not): run scripts/setup.sh"
                )
            })
    };
    Ok((get("-u")?, get("-g")?))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if path.is_dir() {
        for e in std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", path.display()))?;
            chown_tree(&e.path(), uid, gid)?;
        }
    }
    Ok(())
}

impl Cluster {
    /// `initdb` and `pg_ctl start` a new cluster (module docs); waits until it accepts
    /// connections. Takes a couple of seconds.
    ///
    /// Errors: PostgreSQL is not installed ("run scripts/setup.sh"), or a program failed (the
    /// message holds its output and the server log's tail).
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let root = tempfile::Builder::new()
            .prefix("guestlist-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let password = random_hex(16);
        std::fs::create_dir_all(root.join("sock")).map_err(|e| format!("sock dir: {e}"))?;
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).map_err(|e| format!("pwfile: {e}"))?;
        if let Some(user) = &run_as {
            let (uid, gid) = ids_of(user)?;
            chown_tree(&root, uid, gid)?;
        }
        let mut cluster = Cluster {
            root,
            bin,
            port: 0,
            run_as,
            password,
            next_db: AtomicU32::new(0),
            watchdog_in: Mutex::new(None),
            watchdog: Mutex::new(None),
        };
        // From here on the watchdog removes the dir (and stops the server) whatever happens.
        cluster.spawn_watchdog()?;
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let _ = std::fs::remove_file(&pwfile);
        // A port taken between our probe and the server's bind: try another.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            cluster.write_config()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.bootstrap()?;
                    return Ok(cluster);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One cluster per test binary, started on first use and stopped when the process exits
    /// (module docs). Tests that stop or restart the server must [`Cluster::start`] their own.
    ///
    /// Panics: when the cluster cannot start (the message says why, e.g. "run
    /// scripts/setup.sh"): a test that needs PostgreSQL fails, it is never skipped.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| match Cluster::start() {
            Ok(c) => c,
            Err(e) => panic!("cannot start the test PostgreSQL: {e}"),
        })
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// Creates a new, empty database owned by [`APP_ROLE`] and returns its URL
    /// (`postgres://guestlist:<password>@127.0.0.1:<port>/<name>`).
    ///
    /// Panics: when `CREATE DATABASE` fails (the server is stopped, say).
    pub fn fresh_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("gl_{}_{n}", std::process::id());
        if let Err(e) = self.psql(&format!("CREATE DATABASE {name} OWNER {APP_ROLE}")) {
            panic!("CREATE DATABASE {name}: {e}");
        }
        self.url_of(APP_ROLE, &name)
    }

    /// The superuser `postgres`'s URL for database `db`.
    pub fn superuser_url(&self, db: &str) -> String {
        self.url_of("postgres", db)
    }

    fn url_of(&self, user: &str, db: &str) -> String {
        format!(
            "postgres://{user}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Runs one SQL command as the superuser over the unix socket (`psql -c`).
    ///
    /// Errors: psql's output when it fails.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let sock = self.socket_dir();
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-X".as_ref(),
                "-q".as_ref(),
                "-A".as_ref(),
                "-t".as_ref(),
                "-v".as_ref(),
                "ON_ERROR_STOP=1".as_ref(),
                "-h".as_ref(),
                sock.as_os_str(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-d".as_ref(),
                "postgres".as_ref(),
                "-c".as_ref(),
                sql.as_ref(),
            ],
        )
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no checkpoint, clients cut off),
    /// as a crash or a failover does.
    ///
    /// Errors: pg_ctl's output.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
            ],
        )
        .map(|_| ())
    }

    /// Starts the stopped server again on the same port (crash recovery replays the WAL).
    ///
    /// Errors: pg_ctl's output and the log's tail.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }

    /// [`Cluster::stop`] then [`Cluster::start_again`].
    ///
    /// Errors: as those.
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        self.start_again()
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.root.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
            ],
        )
        .map(|_| ())
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{e}\npostgres.log:\n{}", tail.join("\n"))
        })
    }

    fn write_config(&self) -> Result<(), String> {
        let conf = self.data_dir().join("postgresql.auto.conf");
        let sock = self.socket_dir();
        let text = format!(
            "# Written by guestlist-testkit.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             fsync = on\n\
             synchronous_commit = on\n\
             full_page_writes = on\n\
             max_connections = 300\n\
             shared_buffers = '64MB'\n\
             log_min_messages = warning\n",
            self.port,
            sock.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&conf)
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        if let Some(user) = &self.run_as {
            let (uid, gid) = ids_of(user)?;
            std::os::unix::fs::chown(&conf, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", conf.display()))?;
        }
        Ok(())
    }

    /// The application role, with the same password as the superuser.
    fn bootstrap(&self) -> Result<(), String> {
        self.psql(&format!(
            "CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{}'",
            self.password
        ))
        .map(|_| ())
    }

    /// Runs `bin/<program> args` (as the unprivileged user when root) and returns its stdout.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("PGPASSWORD", &self.password);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The watchdog (module docs): `sh` waiting on its standard input, then stopping the server
    /// and removing the temp dir. It ignores SIGINT/SIGTERM/SIGHUP so a Ctrl-C of the test run
    /// still cleans up.
    fn spawn_watchdog(&mut self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- \"$1\" stop -D \"$2\" -m immediate -w"),
            None => "\"$1\" stop -D \"$2\" -m immediate -w".to_owned(),
        };
        let script = format!(
            "trap '' INT TERM HUP; cat >/dev/null; \
             if [ -f \"$2/postmaster.pid\" ]; then {stop} >/dev/null 2>&1; fi; rm -rf \"$3\""
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&pg_ctl)
            .arg(self.data_dir())
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
        *self
            .watchdog_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = child.stdin.take();
        *self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(child);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog stop the server and remove the dir; wait for it.
        drop(
            self.watchdog_in
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        if let Some(mut child) = self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_creates_databases_restarts_and_is_removed_on_drop() {
        let cluster = Cluster::start().unwrap();
        let url = cluster.fresh_database();
        assert!(url.starts_with("postgres://guestlist:"), "{url}");
        let db = url.rsplit('/').next().unwrap().to_owned();
        let out = cluster
            .psql(&format!(
                "SELECT datname FROM pg_database WHERE datname = '{db}'"
            ))
            .unwrap();
        assert_eq!(out.trim(), db);
        let settings = cluster
            .psql("SELECT current_setting('fsync') || ',' || current_setting('synchronous_commit')")
            .unwrap();
        assert_eq!(settings.trim(), "on,on");
        cluster.stop().unwrap();
        assert!(cluster.psql("SELECT 1").is_err());
        cluster.start_again().unwrap();
        assert_eq!(cluster.psql("SELECT 1").unwrap().trim(), "1");
        cluster.restart().unwrap();
        let root = cluster.root.clone();
        assert!(root.join("data/PG_VERSION").is_file());
        drop(cluster);
        assert!(!root.exists(), "the temp dir is removed on drop");
    }
}
