//! Several `guestlist-server` replicas on one PostgreSQL, behind a real HAProxy (issue 13 §3).
//!
//! Real parts only: a PostgreSQL cluster the test starts itself (`guestlist_testkit::postgres`,
//! initdb/pg_ctl in a temp dir), the built `guestlist-server` binary as separate processes, and
//! Debian's `haproxy` with a generated configuration in a temp dir, all on free 127.0.0.1 ports;
//! rows are read back with `psql`. A call "answered" is an HTTP 200 seen by a client.
//!
//! - kill -9 of one of three replicas under a sign-up load: every call answered 200 is stored
//!   exactly once, and calls started once HAProxy's health check had time to notice
//!   (`fall × inter` + slack) all succeed;
//! - PostgreSQL restarted under load: calls during the outage get a 503 before the client's 2 s
//!   timeout (never a hang), and afterwards every replica answers 200 again, not restarted;
//! - one replica cut off from PostgreSQL (its connections go through a TCP proxy that drops them):
//!   its `/readyz` and connector calls answer 503, HAProxy takes it out, and it recovers;
//! - Entra's retry landing on another replica: the same answer, one request row, attempts once.
//!
//! The tests take one lock, so that only one set of replicas loads the machine's cores at a time.
//! They need the `guestlist-server` binary next to this test binary (`cargo test --workspace`
//! builds it; alone: `cargo build -p guestlist-server` first) or at `GUESTLIST_SERVER_BIN`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guestlist_testkit::postgres::Cluster;
use serde_json::{Value, json};

mod deploy;
mod outages;

const USER: &str = "entra";
const PASSWORD: &str = "replica-connector-secret";
/// Shared by every replica, as the README asks: denial tombstones are keyed by it.
const TOMBSTONE_KEY: &str = "0123456789abcdef0123456789abcdef-replicas";
/// HAProxy's health check: `inter` and `fall` (the window in which a dead replica is noticed).
const CHECK_INTER: Duration = Duration::from_millis(200);
const CHECK_FALL: u32 = 2;
/// Entra waits 20 s; our clients give up after 2 s so that a hang shows as a failure.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One replica test at a time (each starts several processes on a 2-core machine).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built server binary: `GUESTLIST_SERVER_BIN`, else `<target>/<profile>/guestlist-server`
/// (this test binary is `<target>/<profile>/deps/it-…`).
fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GUESTLIST_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("guestlist-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p guestlist-server` (or cargo test --workspace)",
        bin.display()
    );
    bin
}

/// A `guestlist-server` process; killed (SIGKILL) on drop.
struct Replica {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Replica {
    async fn start(database: &str, dir: &Path, name: &str) -> Replica {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(server_bin())
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                database,
            ])
            .env("GUESTLIST_CONNECTOR_USERNAME", USER)
            .env("GUESTLIST_CONNECTOR_PASSWORD", PASSWORD)
            .env("GUESTLIST_RETENTION__TOMBSTONE_KEY", TOMBSTONE_KEY)
            .env("GUESTLIST_ADMIN_LISTEN", "off")
            .env("GUESTLIST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut replica = Replica { child, port, log };
        let client = http(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/readyz", replica.base()))
                .send()
                .await
                && r.status() == 200
            {
                return replica;
            }
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!(
                    "{name} exited at start ({status}): {}",
                    std::fs::read_to_string(&replica.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready after 30 s: {}",
                std::fs::read_to_string(&replica.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and reap.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Still the process we started (it was never restarted).
    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `haproxy` in front of the replicas, with an admin socket for its view of them.
struct Haproxy {
    child: Child,
    port: u16,
    socket: PathBuf,
}

impl Haproxy {
    /// The shape of deploy/haproxy.cfg (health check on `/readyz`, `retries` with
    /// `redispatch`), on 127.0.0.1 and with a fast check: `inter 200ms fall 2 rise 2`.
    async fn start(dir: &Path, replicas: &[u16]) -> Haproxy {
        let port = free_port();
        let socket = dir.join("haproxy.sock");
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server r{i} 127.0.0.1:{p}\n"))
            .collect();
        let cfg = format!(
            "global\n    maxconn 1024\n    stats socket {sock} mode 600 level admin\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    retries 2\n    option redispatch 1\n\
             frontend guestlist\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n    default-server check inter {inter}ms fall {CHECK_FALL} rise 2\n{servers}",
            sock = socket.display(),
            inter = CHECK_INTER.as_millis(),
        );
        let cfg_path = dir.join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.join("haproxy.log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("haproxy is missing: run scripts/setup.sh");
        let h = Haproxy {
            child,
            port,
            socket,
        };
        let names: Vec<String> = (0..replicas.len()).map(|i| format!("r{i}")).collect();
        h.wait_for(|s| names.iter().all(|n| s.get(n).is_some_and(|v| v == "UP")))
            .await;
        h
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// HAProxy's status of each server of the backend (`UP`, `DOWN`, `UP 1/2`, …), from
    /// `show stat` on its admin socket.
    async fn states(&self) -> BTreeMap<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::UnixStream::connect(&self.socket).await else {
            return BTreeMap::new();
        };
        s.write_all(b"show stat\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let mut lines = out.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
            return BTreeMap::new();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > st && f[px] == "replicas" && f[sv].starts_with('r'))
            .map(|f| (f[sv].to_owned(), f[st].to_owned()))
            .collect()
    }

    /// Waits (≤ 15 s) until HAProxy's states satisfy `ok`.
    async fn wait_for(&self, ok: impl Fn(&BTreeMap<String, String>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.states().await;
            if ok(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy's servers did not reach the expected state: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

fn sign_up(email: &str) -> Value {
    json!({"email": email, "displayName": "Åsa Bergström", "givenName": "Åsa", "surname": "Bergström",
        "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}],
        "ui_locales": "en-US"})
}

/// `POST {base}/connectors/{which}`: the status (`None`: no HTTP answer before the timeout or a
/// connection error) and the body.
async fn connector(
    client: &reqwest::Client,
    base: &str,
    which: &str,
    body: &Value,
) -> (Option<u16>, Value) {
    match client
        .post(format!("{base}/connectors/{which}"))
        .basic_auth(USER, Some(PASSWORD))
        .json(body)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (Some(status), r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    }
}

/// `psql -At` on `url`: the rows, fields separated by `|`.
fn sql(url: &str, query: &str) -> Vec<Vec<String>> {
    let out = Command::new("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", query])
        .output()
        .expect("psql is missing: run scripts/setup.sh");
    assert!(
        out.status.success(),
        "psql {query:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// Stored requests per e-mail among those starting with `prefix`.
fn stored_per_email(url: &str, prefix: &str) -> BTreeMap<String, u64> {
    sql(
        url,
        &format!(
            "SELECT email, count(*) FROM requests WHERE email LIKE '{prefix}%' GROUP BY email"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect()
}

/// One call of a load: who, when it started (since the load began), how it ended.
#[derive(Debug, Clone)]
struct Call {
    email: String,
    started: Duration,
    took: Duration,
    status: Option<u16>,
}

/// `workers` clients doing request-approval with distinct e-mails (`{prefix}w{w}-{i}@…`)
/// through `base` until `stop` is set; returns every call.
fn sign_up_load(
    base: String,
    prefix: &'static str,
    workers: usize,
    t0: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Call>> {
    tokio::spawn(async move {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (base, calls, stop) = (base.clone(), calls.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let client = http(CLIENT_TIMEOUT);
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let email = format!("{prefix}w{w}-{i}@fabrikam.com");
                    i += 1;
                    let started = t0.elapsed();
                    let (status, body) =
                        connector(&client, &base, "request-approval", &sign_up(&email)).await;
                    if status == Some(200) {
                        assert_eq!(body["code"], "GUESTLIST-APPROVAL-REQUESTED", "{email}");
                    }
                    calls.lock().unwrap().push(Call {
                        email,
                        started,
                        took: t0.elapsed() - started,
                        status,
                    });
                    if status != Some(200) {
                        // A failed call is retried by Entra after a while, not at once.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(calls).unwrap().into_inner().unwrap()
    })
}

/// Every call answered 200 is stored exactly once, and nothing is stored twice.
fn assert_answered_stored_once(url: &str, prefix: &str, calls: &[Call]) {
    let stored = stored_per_email(url, prefix);
    let answered: Vec<&Call> = calls.iter().filter(|c| c.status == Some(200)).collect();
    for c in &answered {
        assert_eq!(
            stored.get(&c.email),
            Some(&1),
            "{} was answered 200 but is stored {:?} times",
            c.email,
            stored.get(&c.email)
        );
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
}
