//! Server-side notifications against a real webhook receiver (axum on 127.0.0.1): a new request
//! is announced in the configured template, a failed delivery is retried, and the connector
//! answer never waits for the webhook; requests pending too long are reminded about.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use guestlist_server::config::{Config, ConnectorAuth, Secret};
use guestlist_server::webhook::{Notifications, Template};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::reviewer::facebook;

const USER: &str = "entra-connector";
const PASS: &str = "s3cret-connector";

/// The receiver: every POST is recorded; the first `hang_first` ones wait for `release` and
/// then answer 503.
struct Hook {
    received: watch::Sender<Vec<Value>>,
    attempts: std::sync::atomic::AtomicU32,
    hang_first: u32,
    release: Notify,
}

async fn receive(State(h): State<Arc<Hook>>, Json(body): Json<Value>) -> StatusCode {
    let n = h.attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if n <= h.hang_first {
        h.release.notified().await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    h.received.send_modify(|v| v.push(body));
    StatusCode::OK
}

async fn receiver(hang_first: u32) -> (Arc<Hook>, String) {
    let hook = Arc::new(Hook {
        received: watch::channel(Vec::new()).0,
        attempts: Default::default(),
        hang_first,
        release: Notify::new(),
    });
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hook, url)
}

async fn server(dir: &tempfile::TempDir, n: Notifications) -> guestlist_server::RunningServer {
    guestlist_server::spawn(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.path().join("server.db").into(),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        notifications: n,
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn request_approval(server: &guestlist_server::RunningServer, claims: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/connectors/request-approval", server.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(claims)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (10 s at most) until the receiver holds a message satisfying `want`.
async fn message(hook: &Hook, want: impl Fn(&Value) -> bool) -> Value {
    let mut rx = hook.received.subscribe();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|v| v.iter().any(&want)),
    )
    .await
    .expect("no such webhook message within 10 s")
    .unwrap();
    got.iter().find(|v| want(v)).cloned().unwrap()
}

#[tokio::test]
async fn webhook_announces_new_requests_retries_and_never_blocks_the_connector() {
    let (hook, url) = receiver(1).await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        &dir,
        Notifications {
            webhook_url: Some(Secret(url)),
            template: Template::Teams,
            retry_initial_ms: 20,
            timeout_seconds: 30,
            ..Notifications::default()
        },
    )
    .await;
    // The webhook hangs on its first delivery: the connector still answers at once.
    let start = Instant::now();
    let answer = request_approval(&s, &facebook(90)).await;
    let took = start.elapsed();
    assert_eq!(answer["action"], "ShowBlockPage", "{answer}");
    assert!(
        took < Duration::from_secs(2),
        "connector answer took {took:?}"
    );
    let mut rx = hook.received.subscribe();
    assert!(rx.borrow_and_update().is_empty(), "still hanging");
    // Released, it answers 503; the retry is delivered.
    hook.release.notify_one();
    let m = message(&hook, |v| v["type"] == "message").await;
    let card = &m["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["body"][0]["text"],
        "New guest request: Facebook User 90"
    );
    // Claim text is never auto-linked: its dots are U+2024 (webhook module docs).
    assert_eq!(card["body"][2]["facts"][1]["value"], "fabrikam\u{2024}com");
    assert_eq!(hook.attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn reminders_post_requests_pending_longer_than_the_limit() {
    let (hook, url) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        &dir,
        Notifications {
            webhook_url: Some(Secret(url)),
            template: Template::Slack,
            remind_after_hours: Some(0),
            reminder_interval_seconds: 1,
            ..Notifications::default()
        },
    )
    .await;
    request_approval(&s, &facebook(91)).await;
    request_approval(&s, &facebook(92)).await;
    let m = message(&hook, |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*2 guest requests pending for more than 0 h*"))
    })
    .await;
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("Facebook User 91") && text.contains("Facebook User 92"),
        "{text}"
    );
    // Each new request was announced too (Slack shape).
    message(&hook, |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*New guest request: Facebook User 92*"))
    })
    .await;
    s.shutdown().await;
}
