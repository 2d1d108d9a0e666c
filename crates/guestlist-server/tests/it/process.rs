//! The `guestlist-server` binary as a process: configured from env and flags like a newcomer
//! would, and killed with SIGKILL mid-load — every connector call it answered is still stored
//! when it restarts on the same database (SQLite, or PostgreSQL with
//! `GUESTLIST_TEST_STORE=postgres`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common;

struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &std::path::Path, port: u16, password_file: &std::path::Path) -> Server {
    let database = common::database(db);
    let mut command = Command::new(env!("CARGO_BIN_EXE_guestlist-server"));
    command.args(["--listen", &format!("127.0.0.1:{port}"), "--database"]);
    match database.postgres_url() {
        Some(url) => command
            .arg(url)
            .env("GUESTLIST_RETENTION__TOMBSTONE_KEY", "k".repeat(40)),
        None => command.arg(db),
    };
    let mut child = command
        .env("GUESTLIST_CONNECTOR_USERNAME", "entra")
        .env("GUESTLIST_CONNECTOR_PASSWORD_FILE", password_file)
        .env("GUESTLIST_POLICY__CODE_PREFIX", "CONTOSO")
        .env("GUESTLIST_ADMIN_LISTEN", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("guestlist-server did not start");
}

#[tokio::test]
async fn kill_9_loses_no_answered_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("guestlist.db");
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret-long-enough\n").unwrap();
    let port = free_port();
    let mut server = start(&db, port, &pw).await;
    let client = reqwest::Client::new();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // Four writers hammer request-approval; the server is killed while they run.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (client, base, answered) = (client.clone(), server.base.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let email = format!("w{w}-{i}@fabrikam.com");
                let body = json!({"email": email, "displayName": "Åsa Bergström",
                    "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId": email}]});
                let r = client.post(format!("{base}/connectors/request-approval")).basic_auth("entra", Some("s3cret-long-enough")).json(&body).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let v: Value = match r.json().await { Ok(v) => v, Err(_) => break };
                        assert_eq!(v["code"], "CONTOSO-APPROVAL-REQUESTED");
                        answered.lock().unwrap().push(email);
                    }
                    _ => break,
                }
            }
        }));
    }
    // The kill comes after 1.5 s of load and at least 11 answers (a loaded machine may need
    // longer for them; 60 s at most).
    let loaded = std::time::Instant::now();
    while loaded.elapsed() < Duration::from_millis(1500)
        || (answered.lock().unwrap().len() <= 10 && loaded.elapsed() < Duration::from_secs(60))
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 10,
        "the load ran too briefly to mean anything ({} answers)",
        answered.len()
    );

    // Restart on the same file: every answered request is there, and says PENDING.
    let mut server = start(&db, free_port(), &pw).await;
    for email in &answered {
        let body = json!({"email": email, "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId": email}]});
        let v: Value = client
            .post(format!("{}/connectors/check-approval-status", server.base))
            .basic_auth("entra", Some("s3cret-long-enough"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["code"], "CONTOSO-APPROVAL-PENDING",
            "{email} was answered but lost"
        );
    }
    println!("{} answered requests survived kill -9", answered.len());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn missing_credentials_is_a_clear_startup_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_guestlist-server"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("GUESTLIST_CONNECTOR_USERNAME")
        .env_remove("GUESTLIST_CONNECTOR_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GUESTLIST_CONNECTOR_USERNAME"), "{err}");
}

#[test]
fn a_weak_connector_password_is_a_clear_startup_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_guestlist-server"))
        .args(["--listen", "127.0.0.1:0"])
        .env("GUESTLIST_CONNECTOR_USERNAME", "entra")
        .env("GUESTLIST_CONNECTOR_PASSWORD", "s3cret")
        .env("GUESTLIST_ADMIN_LISTEN", "off")
        .env_remove("GUESTLIST_CONNECTOR_PASSWORD_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connector.password is too weak"), "{err}");
    assert!(!err.contains("s3cret"), "the password is not echoed: {err}");
}
