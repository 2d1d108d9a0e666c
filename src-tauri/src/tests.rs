//! The shell under `tauri::test`'s mock runtime: no display, real commands, real reviewer.

use std::path::Path;

use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{WebviewWindow, WebviewWindowBuilder};

use crate::{Options, run_app};

fn app(data_dir: &Path) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let app = run_app(
        mock_builder(),
        Options {
            data_dir: Some(data_dir.to_path_buf()),
            sync_interval: None,
            tray: false,
            single_instance: false,
        },
    )
    // The real context: tauri.conf.json (CSP) and capabilities/ (the ACL the UI runs under).
    .build(tauri::generate_context!())
    .expect("the app builds on the mock runtime");
    let webview = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("a window");
    (app, webview)
}

fn invoke(webview: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The origin the embedded UI is served from (custom protocol).
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().expect("json"))
}

/// The IPC error contract the UI relies on: an object with string `code` and `message`.
fn assert_error_shape(e: &Value) -> String {
    let o = e
        .as_object()
        .unwrap_or_else(|| panic!("error is not an object: {e}"));
    let code = o.get("code").and_then(Value::as_str).expect("string code");
    assert!(
        o.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty())
    );
    for k in o.keys() {
        assert!(
            ["code", "message", "requestId", "graph"].contains(&k.as_str()),
            "unexpected key {k}"
        );
    }
    code.to_owned()
}

#[test]
fn errors_cross_the_ipc_as_code_and_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let e =
        invoke(&webview, "deny", json!({"ids": [], "reason": ""})).expect_err("nothing to deny");
    let code = assert_error_shape(&e);
    assert!(code.contains('.'), "stable dotted code, got {code}");
}

#[test]
fn signed_out_status_settings_and_empty_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let status = invoke(&webview, "status", json!({})).expect("status");
    assert_eq!(status["session"], Value::Null);
    assert_eq!(status["pendingCount"], json!(0));
    assert!(status["outbox"].as_array().is_some_and(Vec::is_empty));

    let mut settings = invoke(&webview, "get_settings", json!({})).expect("settings");
    assert!(settings["authority"].is_string());
    settings["do_not_disturb"] = json!(true);
    invoke(&webview, "save_settings", json!({ "settings": settings })).expect("saved");
    let back = invoke(&webview, "get_settings", json!({})).expect("settings");
    assert_eq!(back["do_not_disturb"], json!(true));
    assert!(dir.path().join("settings.json").exists());

    let mut bad = back.clone();
    bad["api_base_url"] = json!("not a url");
    let e = invoke(&webview, "save_settings", json!({ "settings": bad })).expect_err("invalid");
    assert_eq!(assert_error_shape(&e), "settings.invalid");

    let q = invoke(&webview, "queue", json!({"query": {"sort": "oldestFirst"}})).expect("queue");
    assert_eq!(q["items"], json!([]));
    assert_eq!(q["totalPending"], json!(0));
}

#[test]
fn an_unusable_data_dir_is_reported_by_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let (_app, webview) = app(&file);
    let e = invoke(&webview, "status", json!({})).expect_err("no reviewer");
    assert_eq!(assert_error_shape(&e), crate::NOT_READY.as_str());
    let e = invoke(&webview, "queue", json!({"query": {}})).expect_err("no reviewer");
    assert_eq!(assert_error_shape(&e), crate::NOT_READY.as_str());
}

#[test]
fn csp_and_capabilities_are_strict() {
    let conf: Value = serde_json::from_str(include_str!("../tauri.conf.json")).expect("conf");
    let csp = &conf["app"]["security"]["csp"];
    assert_eq!(csp["default-src"], "'self'");
    assert_eq!(csp["script-src"], "'self'");
    assert_eq!(csp["connect-src"], "ipc: http://ipc.localhost");
    assert_eq!(csp["object-src"], "'none'");
    let cap: Value =
        serde_json::from_str(include_str!("../capabilities/default.json")).expect("capability");
    assert_eq!(cap["windows"], json!(["main"]));
    assert_eq!(
        cap["permissions"],
        json!(["core:event:allow-listen", "core:event:allow-unlisten"])
    );
}

/// The status event (issue 16, "Modules by layer"): one at start, one when the status changed
/// (here a sync that failed signed out records its error), none while it stays the
/// same.
#[test]
fn the_status_event_carries_each_change_once() {
    use std::sync::mpsc;
    use std::time::Duration;
    use tauri::{Listener, Manager};

    let dir = tempfile::tempdir().expect("tempdir");
    let (app, _webview) = app(dir.path());
    let reviewer = app
        .state::<crate::AppState>()
        .reviewer()
        .expect("reviewer")
        .clone();
    let (tx, rx) = mpsc::channel::<Value>();
    app.listen_any(crate::background::STATUS_CHANGED, move |e| {
        let _ = tx.send(serde_json::from_str(e.payload()).expect("json status"));
    });
    tauri::async_runtime::spawn(crate::background::status_changes(
        app.handle().clone(),
        reviewer.clone(),
    ));
    let wait = Duration::from_secs(10);
    let first = rx.recv_timeout(wait).expect("a status at start");
    assert_eq!(first["session"], Value::Null);

    // Signed out, a sync fails (`auth.not_signed_in`, or `auth.keyring_unavailable` where no
    // keyring runs) and records that as the last error.
    let e = tauri::async_runtime::block_on(reviewer.sync()).expect_err("signed out");
    assert!(e.code.as_str().starts_with("auth."), "{e:?}");
    assert_ne!(first["lastError"]["code"], e.code.as_str());
    let changed = loop {
        let s = rx.recv_timeout(wait).expect("the change is emitted");
        if s["lastError"]["code"] == e.code.as_str() {
            break s;
        }
    };
    assert_eq!(changed["syncing"], false);
    // Unchanged: nothing more, although the status was looked at twice meanwhile.
    let quiet = crate::background::STATUS_CHECK_EVERY * 2 + Duration::from_millis(300);
    assert!(
        rx.recv_timeout(quiet).is_err(),
        "an unchanged status is not sent again"
    );
}

/// The UI's `set_ui_language` reaches the shell through the real ACL: the language applies
/// (an unknown one is English) and is kept in the data directory for the next start.
#[test]
fn set_ui_language_is_invokable_and_kept_in_the_data_dir() {
    use tauri::Manager;
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, webview) = app(dir.path());
    let lang = |v: &str| invoke(&webview, "set_ui_language", json!({ "language": v }));
    assert_eq!(lang("fr-CA"), Ok(json!("fr")));
    assert_eq!(
        app.state::<crate::locale::UiLanguage>().get(),
        crate::messages::Lang::Fr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(crate::locale::LANGUAGE_FILE)).expect("stored"),
        "fr"
    );
    assert_eq!(lang("de"), Ok(json!("en")), "unknown language → English");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(crate::locale::LANGUAGE_FILE)).expect("stored"),
        "en"
    );
}
