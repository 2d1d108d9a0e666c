//! `guestlist-notifyd`: a small `org.freedesktop.Notifications` server for the window E2E.
//!
//! It owns the well-known name on the session bus (a private `dbus-run-session` bus in
//! `scripts/e2e.sh`), answers the methods of the Desktop Notifications Specification 1.2
//! (<https://specifications.freedesktop.org/notification-spec/latest/protocol.html>) —
//! `GetCapabilities` (`actions`, `body`), `Notify` (increasing ids from 1, or the `replaces_id`),
//! `CloseNotification` (emits `NotificationClosed` with reason 3), `GetServerInformation` — and
//! records every call as one JSON line in the log file:
//!
//! ```json
//! {"event":"notify","id":1,"app_name":"guestlist","replaces_id":0,"app_icon":"…","summary":"…",
//!  "body":"…","actions":["approve","Approve","open","Open","default",""],"hints":["sound-name"],
//!  "expire_timeout":-1,"sender":":1.7"}
//! {"event":"action_invoked","id":1,"action":"approve"}
//! {"event":"closed","id":1,"reason":2}
//! ```
//!
//! Control over HTTP on `--control` (127.0.0.1 only), as a person would act on the shown
//! notification: `POST /invoke` with `{"id": 1, "action": "approve"}` emits
//! `ActionInvoked(1, "approve")`, then `NotificationClosed(1, 2)` as a server does after an
//! action unless the notification has the `resident` hint (400 if the notification does not
//! offer that action, 404 if it is not shown). `GET /notifications` answers the `notify`
//! records so far as a JSON array. The control port is bound only once the bus name is owned,
//! so a successful `GET /notifications` means the server is ready.
//!
//! Usage: `guestlist-notifyd --log <file.jsonl> --control 127.0.0.1:<port>`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedVariant, connection, interface};

/// The object path of the specification.
const PATH: &str = "/org/freedesktop/Notifications";

/// The well-known bus name of the specification.
const NAME: &str = "org.freedesktop.Notifications";

/// `NotificationClosed` reasons (specification, "Signals").
const DISMISSED: u32 = 2;
const CLOSED_BY_CALL: u32 = 3;

/// What the server and the control endpoint share.
#[derive(Default)]
struct Shared {
    next_id: u32,
    /// Shown notifications: id → (actions, resident).
    shown: BTreeMap<u32, (Vec<String>, bool)>,
    /// Every `notify` record, in order.
    calls: Vec<Value>,
    log: Option<std::fs::File>,
}

impl Shared {
    fn record(&mut self, line: Value) {
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
        if line["event"] == "notify" {
            self.calls.push(line);
        }
    }
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(s: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `org.freedesktop.Notifications` object.
struct Server {
    shared: SharedRef,
}

#[interface(name = "org.freedesktop.Notifications")]
impl Server {
    /// `GetCapabilities() -> as`.
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    /// `Notify(susssasa{sv}i) -> u`.
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let mut s = lock(&self.shared);
        let id = if replaces_id != 0 && s.shown.contains_key(&replaces_id) {
            replaces_id
        } else {
            s.next_id += 1;
            s.next_id
        };
        let resident = hints
            .get("resident")
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false);
        let mut hint_keys: Vec<&String> = hints.keys().collect();
        hint_keys.sort();
        let line = json!({
            "event": "notify",
            "id": id,
            "app_name": app_name,
            "replaces_id": replaces_id,
            "app_icon": app_icon,
            "summary": summary,
            "body": body,
            "actions": actions,
            "hints": hint_keys,
            "expire_timeout": expire_timeout,
            "sender": header.sender().map(|s| s.to_string()),
        });
        s.shown.insert(id, (actions, resident));
        s.record(line);
        id
    }

    /// `CloseNotification(u)`: closes it and emits `NotificationClosed(id, 3)`.
    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let was_shown = {
            let mut s = lock(&self.shared);
            let was = s.shown.remove(&id).is_some();
            if was {
                s.record(json!({"event": "closed", "id": id, "reason": CLOSED_BY_CALL}));
            }
            was
        };
        if was_shown {
            Self::notification_closed(&emitter, id, CLOSED_BY_CALL).await?;
        }
        Ok(())
    }

    /// `GetServerInformation() -> (name, vendor, version, spec_version)`.
    #[zbus(out_args("name", "vendor", "version", "spec_version"))]
    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "guestlist-notifyd".into(),
            "Guestlist".into(),
            env!("CARGO_PKG_VERSION").into(),
            "1.2".into(),
        )
    }

    /// `ActionInvoked(u id, s action_key)`.
    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    /// `NotificationClosed(u id, u reason)`.
    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

#[derive(Clone)]
struct Control {
    shared: SharedRef,
    conn: Connection,
}

/// `POST /invoke {"id": u32, "action": "key"}`.
async fn invoke(State(c): State<Control>, Json(req): Json<Value>) -> (StatusCode, Json<Value>) {
    let (Some(id), Some(action)) = (
        req["id"].as_u64().and_then(|i| u32::try_from(i).ok()),
        req["action"].as_str(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body must be {\"id\": <u32>, \"action\": <string>}"})),
        );
    };
    let resident = {
        let s = lock(&c.shared);
        match s.shown.get(&id) {
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": format!("notification {id} is not shown")})),
                );
            }
            // Actions are key/label pairs: only the keys count.
            Some((actions, _)) if !actions.iter().step_by(2).any(|k| k == action) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(
                        json!({"error": format!("notification {id} offers no action {action:?}"), "actions": actions}),
                    ),
                );
            }
            Some((_, resident)) => *resident,
        }
    };
    let iface = match c.conn.object_server().interface::<_, Server>(PATH).await {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            );
        }
    };
    let emitter = iface.signal_emitter();
    lock(&c.shared).record(json!({"event": "action_invoked", "id": id, "action": action}));
    if let Err(e) = Server::action_invoked(emitter, id, action).await {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        );
    }
    if !resident {
        {
            let mut s = lock(&c.shared);
            s.shown.remove(&id);
            s.record(json!({"event": "closed", "id": id, "reason": DISMISSED}));
        }
        let _ = Server::notification_closed(emitter, id, DISMISSED).await;
    }
    (
        StatusCode::OK,
        Json(json!({"id": id, "action": action, "closed": !resident})),
    )
}

/// `GET /notifications`: every `Notify` call so far.
async fn notifications(State(c): State<Control>) -> Json<Value> {
    Json(Value::Array(lock(&c.shared).calls.clone()))
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log = None;
    let mut control: Option<SocketAddr> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--log" => log = it.next().cloned(),
            "--control" => {
                control = it
                    .next()
                    .map(|s| s.parse().map_err(|e| format!("--control {s}: {e}")))
                    .transpose()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let (Some(log), Some(control)) = (log, control) else {
        return Err(
            "usage: guestlist-notifyd --log <file.jsonl> --control 127.0.0.1:<port>".into(),
        );
    };
    if !control.ip().is_loopback() {
        return Err("--control must be a loopback address".into());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {log}: {e}"))?;
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        log: Some(file),
        ..Shared::default()
    }));
    let conn = connection::Builder::session()
        .name(NAME)
        .serve_at(
            PATH,
            Server {
                shared: shared.clone(),
            },
        )
        .build()
        .await
        .map_err(|e| format!("cannot own {NAME} on the session bus: {e}"))?;
    let app = Router::new()
        .route("/invoke", post(invoke))
        .route("/notifications", get(notifications))
        .with_state(Control { shared, conn });
    let listener = tokio::net::TcpListener::bind(control)
        .await
        .map_err(|e| format!("cannot bind {control}: {e}"))?;
    eprintln!("guestlist-notifyd: {NAME} owned; control on http://{control}");
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("control server: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestlist-notifyd: {e}");
            ExitCode::FAILURE
        }
    }
}
