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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_behind_haproxy_loses_no_answered_sign_up() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for i in 0..3 {
        replicas.push(Replica::start(&url, dir.path(), &format!("r{i}")).await);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let lb = Haproxy::start(dir.path(), &ports).await;

    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = sign_up_load(lb.base(), "kill-", 8, t0, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = t0.elapsed();
    replicas[0].kill_9();
    // HAProxy notices within fall × inter; 1 s of slack for a loaded machine.
    let settled = killed_at + CHECK_INTER * CHECK_FALL + Duration::from_secs(1);
    lb.wait_for(|s| s.get("r0").is_some_and(|v| v.starts_with("DOWN")))
        .await;
    tokio::time::sleep((settled + Duration::from_secs(2)).saturating_sub(t0.elapsed())).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = load.await.unwrap();

    let answered = calls.iter().filter(|c| c.status == Some(200)).count();
    let failed: Vec<&Call> = calls.iter().filter(|c| c.status != Some(200)).collect();
    let after: Vec<&Call> = calls.iter().filter(|c| c.started >= settled).collect();
    println!(
        "kill -9 under load: {} calls, {answered} answered 200, {} failed (all before {:?} after the kill), {} started after the window",
        calls.len(),
        failed.len(),
        settled - killed_at,
        after.len()
    );
    assert!(
        calls.iter().filter(|c| c.started < killed_at).count() > 20,
        "the load ran too briefly before the kill to mean anything"
    );
    assert!(
        after.len() > 20,
        "too few calls after the health-check window to mean anything"
    );
    let late_failures: Vec<&&Call> = after.iter().filter(|c| c.status != Some(200)).collect();
    assert!(
        late_failures.is_empty(),
        "calls started after fall × inter + 1 s failed: {late_failures:?}"
    );
    assert_answered_stored_once(&url, "kill-", &calls);
    for r in replicas.iter_mut().skip(1) {
        assert!(r.is_running());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_fails_fast_and_every_replica_recovers() {
    let _serial = SERIAL.lock().await;
    // Its own cluster: this test stops it.
    let cluster = Cluster::start().unwrap();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for i in 0..2 {
        replicas.push(Replica::start(&url, dir.path(), &format!("r{i}")).await);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let lb = Haproxy::start(dir.path(), &ports).await;

    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = sign_up_load(lb.base(), "restart-", 4, t0, stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let down_at = t0.elapsed();
    cluster.stop().unwrap();
    // While PostgreSQL is down, each replica itself answers a connector call with 503 before the
    // client's timeout, and so does its /readyz.
    let client = http(CLIENT_TIMEOUT);
    for r in &replicas {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _) = connector(
                &client,
                &r.base(),
                "check-approval-status",
                &sign_up("restart-probe@fabrikam.com"),
            )
            .await;
            assert!(
                status.is_some(),
                "a call during the outage got no answer within {CLIENT_TIMEOUT:?}"
            );
            let ready = client.get(format!("{}/readyz", r.base())).send().await;
            let ready = ready.map(|r| r.status().as_u16()).ok();
            if status == Some(503) && ready == Some(503) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica still answers {status:?} (readyz {ready:?}) with PostgreSQL stopped"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.start_again().unwrap();
    let up_at = t0.elapsed();

    // Every replica answers again, without being restarted.
    for r in replicas.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = connector(
                &client,
                &r.base(),
                "request-approval",
                &sign_up(&format!("restart-after-{}@fabrikam.com", r.port)),
            )
            .await;
            if status == Some(200) {
                assert_eq!(body["code"], "GUESTLIST-APPROVAL-REQUESTED");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica did not recover after PostgreSQL came back: {status:?} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(r.is_running(), "the replica was not restarted");
    }
    lb.wait_for(|s| s.values().all(|v| v == "UP")).await;
    let recovered_at = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = load.await.unwrap();

    // Through HAProxy, every call got an HTTP answer: 200, or 503 during the outage — none hung
    // until the client's timeout, none was cut without an answer.
    let unanswered: Vec<&Call> = calls.iter().filter(|c| c.status.is_none()).collect();
    assert!(
        unanswered.is_empty(),
        "calls without an answer within {CLIENT_TIMEOUT:?}: {unanswered:?}"
    );
    let odd: Vec<&Call> = calls
        .iter()
        .filter(|c| !matches!(c.status, Some(200 | 503)))
        .collect();
    assert!(odd.is_empty(), "answers other than 200 or 503: {odd:?}");
    let outage = calls
        .iter()
        .filter(|c| c.started >= down_at && c.started < up_at)
        .count();
    let failed = calls.iter().filter(|c| c.status == Some(503)).count();
    let slowest = calls.iter().map(|c| c.took).max().unwrap_or_default();
    println!(
        "PostgreSQL restart under load: {} calls, {outage} started during the outage ({:?}), {failed} answered 503, slowest answer {slowest:?}, all replicas back {:?} after the restart",
        calls.len(),
        up_at - down_at,
        recovered_at - up_at
    );
    assert!(failed > 0, "the outage was not seen by the load");
    assert!(
        calls
            .iter()
            .any(|c| c.started >= recovered_at && c.status == Some(200)),
        "no call succeeded after the recovery"
    );
    assert_answered_stored_once(&url, "restart-", &calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_postgres_answers_503_leaves_the_pool_and_recovers() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    // Replica r1 reaches PostgreSQL through a TCP proxy: the "network" that is cut.
    let pg = std::net::SocketAddr::from(([127, 0, 0, 1], cluster.port()));
    let link = guestlist_tests::Proxy::start(pg).await.unwrap();
    let link_port = link.url().rsplit(':').next().unwrap().to_owned();
    let cut_url = url.replacen(&format!(":{}/", pg.port()), &format!(":{link_port}/"), 1);
    assert_ne!(cut_url, url, "the database URL names {pg}: {url}");
    let a = Replica::start(&url, dir.path(), "r0").await;
    let mut b = Replica::start(&cut_url, dir.path(), "r1").await;
    let lb = Haproxy::start(dir.path(), &[a.port, b.port]).await;
    let client = http(CLIENT_TIMEOUT);

    link.set_up(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{}/readyz", b.base())).send().await;
        let ready = ready.map(|r| r.status().as_u16()).ok();
        let (status, _) = connector(
            &client,
            &b.base(),
            "request-approval",
            &sign_up("cut-b@fabrikam.com"),
        )
        .await;
        assert!(
            status.is_some(),
            "the cut-off replica gave no answer within {CLIENT_TIMEOUT:?}"
        );
        if ready == Some(503) && status == Some(503) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cut off from PostgreSQL, the replica still answers readyz {ready:?}, request-approval {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lb.wait_for(|s| s.get("r1").is_some_and(|v| v.starts_with("DOWN")) && s["r0"] == "UP")
        .await;
    // Through HAProxy every call lands on the healthy replica.
    for i in 0..20 {
        let (status, _) = connector(
            &client,
            &lb.base(),
            "request-approval",
            &sign_up(&format!("cut-lb-{i}@fabrikam.com")),
        )
        .await;
        assert_eq!(status, Some(200), "call {i} through haproxy");
    }

    link.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = connector(
            &client,
            &b.base(),
            "request-approval",
            &sign_up("cut-b@fabrikam.com"),
        )
        .await;
        if status == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not recover: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lb.wait_for(|s| s.values().all(|v| v == "UP")).await;
    assert!(b.is_running(), "the replica was not restarted");
    let stored = stored_per_email(&url, "cut-");
    assert_eq!(stored.len(), 21, "{stored:?}");
    assert!(stored.values().all(|n| *n == 1), "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_retry_on_another_replica_gets_the_same_answer_and_one_request() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let a = Replica::start(&url, dir.path(), "r0").await;
    let b = Replica::start(&url, dir.path(), "r1").await;
    let client = http(CLIENT_TIMEOUT);

    // In turn: the call to A, then Entra's retry of the same call to B.
    let body = sign_up("retry-turn@fabrikam.com");
    let (sa, first) = connector(&client, &a.base(), "request-approval", &body).await;
    let (sb, retry) = connector(&client, &b.base(), "request-approval", &body).await;
    assert_eq!((sa, sb), (Some(200), Some(200)));
    assert_eq!(first["code"], "GUESTLIST-APPROVAL-REQUESTED");
    assert_eq!(retry, first, "the retry on B answers as A did");

    // At once: ten people whose call and retry reach A and B at the same time.
    let mut races = Vec::new();
    for i in 0..10 {
        let (client, a, b) = (client.clone(), a.base(), b.base());
        races.push(tokio::spawn(async move {
            let body = sign_up(&format!("retry-race-{i}@fabrikam.com"));
            let (x, y) = tokio::join!(
                connector(&client, &a, "request-approval", &body),
                connector(&client, &b, "request-approval", &body)
            );
            assert_eq!((x.0, y.0), (Some(200), Some(200)));
            assert_eq!(x.1, y.1, "both replicas answer the same");
        }));
    }
    for r in races {
        r.await.unwrap();
    }

    let rows = sql(
        &url,
        "SELECT email, count(*), max(attempts) FROM requests WHERE email LIKE 'retry-%' GROUP BY email ORDER BY email",
    );
    assert_eq!(rows.len(), 11, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (r[1].as_str(), r[2].as_str()),
            ("1", "1"),
            "one request, one attempt: {r:?}"
        );
    }
    // One "requested" history entry each: the retry wrote nothing.
    let history = sql(
        &url,
        "SELECT r.email, count(*) FROM history h JOIN requests r ON r.id = h.request_id \
         WHERE r.email LIKE 'retry-%' GROUP BY r.email HAVING count(*) <> 1",
    );
    assert!(
        history.is_empty(),
        "history written by a retry: {history:?}"
    );
}

/// The `GRANT` statements of the README's PostgreSQL grants block (between
/// `<!-- grants:begin -->` and `<!-- grants:end -->`), for database `guestlist` and role
/// `guestlist_app`.
fn readme_grants() -> Vec<String> {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("README.md"),
    )
    .unwrap();
    let block = readme
        .split_once("<!-- grants:begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- grants:end -->"))
        .map(|(block, _)| block)
        .expect("README.md has no grants block");
    let grants: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GRANT "))
        .map(str::to_owned)
        .collect();
    assert!(!grants.is_empty(), "no GRANT in the README's grants block");
    grants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_runs_with_exactly_the_grants_the_readme_prints() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let id = std::process::id();
    let (db, role, password) = (
        format!("gl_grants_{id}"),
        format!("gl_app_{id}"),
        "grants-test-password",
    );
    // A database owned by the superuser and a role with nothing but the README's grants.
    cluster
        .psql(&format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'"
        ))
        .unwrap();
    cluster.psql(&format!("CREATE DATABASE {db}")).unwrap();
    let admin = cluster.superuser_url(&db);
    for grant in readme_grants() {
        let grant = grant
            .replace("guestlist_app", &role)
            .replace("DATABASE guestlist ", &format!("DATABASE {db} "));
        sql(&admin, &grant);
    }
    let url = format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{db}",
        cluster.port()
    );
    let dir = tempfile::tempdir().unwrap();
    // The first replica migrates the schema, the second finds it migrated.
    let a = Replica::start(&url, dir.path(), "r0").await;
    let b = Replica::start(&url, dir.path(), "r1").await;
    let client = http(CLIENT_TIMEOUT);
    let body = sign_up("grants@fabrikam.com");
    let (status, v) = connector(&client, &a.base(), "request-approval", &body).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (Some(200), Some("GUESTLIST-APPROVAL-REQUESTED"))
    );
    let (status, v) = connector(&client, &b.base(), "check-approval-status", &body).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (Some(200), Some("GUESTLIST-APPROVAL-PENDING"))
    );
    // The role owns what it created and is no superuser.
    let rows = sql(
        &admin,
        &format!("SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'"),
    );
    assert_eq!(rows, vec![vec!["f".to_owned()]]);
}

/// deploy/guestlist-server.service's `ExecStart` arguments, `Environment=` settings and
/// `LoadCredential=` names, with `%d` (the credentials directory) replaced by `creds`.
fn unit_settings(creds: &Path) -> (Vec<String>, Vec<(String, String)>, Vec<String>) {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("deploy/guestlist-server.service"),
    )
    .unwrap();
    let d = creds.to_str().unwrap();
    let mut args = Vec::new();
    let mut env = Vec::new();
    let mut credentials = Vec::new();
    for line in unit.lines() {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            args = cmd
                .split_whitespace()
                .skip(1)
                .map(|a| a.replace("%d", d))
                .collect();
        } else if let Some(kv) = line.strip_prefix("Environment=") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_owned(), v.replace("%d", d)));
        } else if let Some(c) = line.strip_prefix("LoadCredential=") {
            credentials.push(c.split_once(':').unwrap().0.to_owned());
        }
    }
    (args, env, credentials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_units_settings_run_a_replica_on_postgres() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    // What systemd would put in $CREDENTIALS_DIRECTORY: the files the unit loads, the
    // configuration being deploy/guestlist.toml with the PostgreSQL URL as its `database`.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("deploy/guestlist.toml"),
    )
    .unwrap();
    assert!(
        example.lines().any(|l| l.starts_with("database = ")),
        "deploy/guestlist.toml sets no database"
    );
    let config: String = example
        .lines()
        .map(|l| {
            if l.starts_with("database = ") {
                format!("database = \"{url}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(creds.join("guestlist.toml"), config).unwrap();
    std::fs::write(creds.join("connector-password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(creds.join("tombstone-key"), format!("{TOMBSTONE_KEY}\n")).unwrap();
    let (args, env, credentials) = unit_settings(&creds);
    assert_eq!(
        credentials,
        ["guestlist.toml", "connector-password", "tombstone-key"],
        "the unit's credentials changed: update this test and the README"
    );
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let port = free_port();
    let log = dir.path().join("unit.log");
    let mut child = Command::new(server_bin())
        .args(&args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .envs(env)
        // Only here: the example's admin listener port may be taken on a test machine.
        .env("GUESTLIST_ADMIN_LISTEN", "off")
        .current_dir(&state)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = http(CLIENT_TIMEOUT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the server exited with the unit's settings ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not ready after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, v) = connector(
        &client,
        &base,
        "request-approval",
        &sign_up("unit@fabrikam.com"),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, Some(200), "{v}");
    // The request is in PostgreSQL (the configuration's `database`), and nothing in the state
    // directory: no SQLite file was opened instead.
    assert_eq!(
        stored_per_email(&url, "unit@").get("unit@fabrikam.com"),
        Some(&1)
    );
    let files: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert!(
        files.is_empty(),
        "the server wrote to its state directory: {files:?}"
    );
}
