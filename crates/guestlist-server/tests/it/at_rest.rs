//! The database at rest (issue 12 "At rest"): the database, `-wal`, `-shm` and the lock file
//! are 0600 whatever the umask, an existing looser file is tightened with a WARN, and
//! `guestlist-server backup --to FILE` copies a database that a running server is writing to:
//! the copy is 0600, passes `integrity_check`, and its counts are those of one commit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use guestlist_core::connector::Claims;
// SQLite-only (file modes and the online backup of a SQLite file): the sync `SqliteStore`.
use guestlist_server::store::SqliteStore as Store;
use serde_json::json;

use crate::common::*;

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    PathBuf::from(format!("{}{s}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", ".lock"]
        .iter()
        .map(|s| with_suffix(db, s))
        .collect()
}

fn claims(email: &str) -> Claims {
    Claims::from_json(json!({"email": email, "displayName": "Kim"})).unwrap()
}

/// Stores one request, so SQLite has written its `-wal` and `-shm`.
fn write_one(store: &Store, email: &str) {
    store
        .request_approval(
            &claims(email),
            &guestlist_core::policy::Policy::default(),
            time::OffsetDateTime::now_utc(),
            time::Duration::seconds(120),
        )
        .unwrap();
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the server binary under `umask` (through `sh`), waits until it answers, and returns
/// the child (the caller kills it).
async fn serve_under_umask(db: &Path, umask: u32, password_file: &Path) -> std::process::Child {
    let port = free_port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_guestlist-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database"])
        .arg(db)
        .env("GUESTLIST_CONNECTOR_USERNAME", "entra")
        .env("GUESTLIST_CONNECTOR_PASSWORD_FILE", password_file)
        .env("GUESTLIST_ADMIN_LISTEN", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("guestlist-server did not start under umask {umask:o}");
}

#[tokio::test]
async fn database_files_are_0600_whatever_the_umask_and_loose_ones_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret-long-enough\n").unwrap();
    for umask in [0o022, 0o000] {
        let db = dir.path().join(format!("umask-{umask:o}.db"));
        let mut child = serve_under_umask(&db, umask, &pw).await;
        let modes: Vec<_> = files(&db)
            .iter()
            .map(|f| (f.display().to_string(), f.exists().then(|| mode(f))))
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        for (f, m) in modes {
            assert_eq!(m, Some(0o600), "{f} under umask {umask:o}");
        }
    }

    // A database made by an older server with 0644 files: tightened at start, with a WARN.
    let db = dir.path().join("old.db");
    let store = Store::open(&db).unwrap();
    write_one(&store, "kim@partner.example");
    for f in files(&db) {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    drop(store);
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let store = tracing::subscriber::with_default(subscriber, || Store::open(&db).unwrap());
    for f in files(&db) {
        assert_eq!(mode(&f), 0o600, "{} not tightened", f.display());
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(
        log.contains("old.db") && log.contains("old_mode=644"),
        "{log}"
    );
    // The database still works.
    write_one(&store, "lee@partner.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_database_that_a_running_server_writes_to() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // SQLite-only: the online backup copies a SQLite file (pg_dump does it for PostgreSQL).
    let s = start_sqlite(&issuer, &db, |_| {}).await;
    for i in 0..200 {
        sign_up(&s, &format!("before-{i}@partner.example"), 200).await;
    }
    // Writes go on during the backup.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (state, stop) = (s.state.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 5_000 {
                state
                    .request_approval(&claims(&format!("during-{n}@partner.example")))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let copy = dir.path().join("backups").join("copy.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let out = tokio::task::spawn_blocking({
        let (db, copy) = (db.clone(), copy.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_guestlist-server"))
                .args(["--database", db.to_str().unwrap(), "backup", "--to"])
                .arg(&copy)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let during = writer.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));
    assert_eq!(mode(&copy), 0o600);
    assert!(!with_suffix(&copy, ".partial").exists());

    // The server kept running and writing: one more write after the backup.
    sign_up(&s, "after@partner.example", 10).await;
    let live_requests = s
        .state
        .store
        .counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == "pending")
        .map(|(_, n)| n);
    s.shutdown().await;

    let c = rusqlite::Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    let requests = count("SELECT COUNT(*) FROM requests");
    // One commit's state: every request has its history entry and its event, no more, no less.
    assert_eq!(
        requests,
        count("SELECT COUNT(*) FROM history WHERE action = 'requested'")
    );
    assert_eq!(
        requests,
        count("SELECT COUNT(*) FROM events WHERE kind = 'request.created'")
    );
    assert!(requests >= 200, "{requests}");
    assert_eq!(
        count("SELECT COUNT(*) FROM requests WHERE email = 'after@partner.example'"),
        0
    );
    println!(
        "copy holds {requests} requests; {during} written during the backup; live {live_requests:?}"
    );
    assert!(live_requests.is_some_and(|n| n as i64 > requests));

    // Refusals: no such database; the copy onto the database itself.
    let out = Command::new(env!("CARGO_BIN_EXE_guestlist-server"))
        .args([
            "--database",
            dir.path().join("none.db").to_str().unwrap(),
            "backup",
            "--to",
        ])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
    let out = Command::new(env!("CARGO_BIN_EXE_guestlist-server"))
        .args([
            "--database",
            copy.to_str().unwrap(),
            "backup",
            "--to",
            copy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
