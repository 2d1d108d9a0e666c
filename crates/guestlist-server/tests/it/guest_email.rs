//! Issue 14 §5 "Tell the guest", end to end: a real guestlist-server on 127.0.0.1 (its store
//! per `GUESTLIST_TEST_STORE`: a SQLite file or a PostgreSQL database), sign-ups through the
//! request-approval connector over HTTP, decisions through the approver API with real tokens,
//! and a real SMTP receiver started by the test (Python `aiosmtpd`, Debian's python3-aiosmtpd,
//! installed by `scripts/setup.sh`) that writes each message it accepts into a maildir.
//!
//! - the approved guest's e-mail arrives in the language of their sign-up (`ui_locales`), the
//!   denial e-mail too when `on_deny`; an Entra ID guest's approval sends nothing (Entra's
//!   invitation e-mail goes out), nor does a denial when `on_deny` is off;
//! - a receiver that is down at first: the e-mail arrives once it is up (retries, the cursor
//!   not advanced);
//! - the cursor is durable: a restarted server sends nothing twice and the next decision once;
//! - with two replicas on one PostgreSQL database, one e-mail per decision.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use guestlist_server::RunningServer;
use guestlist_server::guest_email::GuestEmailConfig;
use serde_json::{Value, json};

use crate::common::Issuer;
use crate::common::{self, PASS, USER};

/// An aiosmtpd SMTP server on 127.0.0.1:`port`, storing messages in the maildir `dir`.
struct Receiver {
    child: Child,
}

impl Receiver {
    /// Starts it and waits until it accepts connections.
    async fn start(port: u16, dir: &Path) -> Receiver {
        // Debian's interpreter first: python3-aiosmtpd is installed for it.
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("python3 with aiosmtpd: run scripts/setup.sh (apt package python3-aiosmtpd)");
        let mut child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Receiver { child };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not listen on {port} within 10 s");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 nothing listened on a moment ago (the receiver is a child process, so
/// its port must be known before it binds).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The messages in the maildir `dir` (`new/` and `cur/`), as raw text.
fn messages(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

/// Waits (20 s at most) until the maildir holds `n` messages; returns them.
async fn wait_for(dir: &Path, n: usize) -> Vec<String> {
    for _ in 0..400 {
        let m = messages(dir);
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{n} message(s) not received within 20 s: {:?}",
        messages(dir)
    );
}

/// The decoded text of a received message: quoted-printable and base64 bodies undone.
fn decoded(raw: &str) -> String {
    let mut out = raw.replace("=\r\n", "").replace("=\n", "");
    // Decode `=XX` sequences of quoted-printable parts.
    let bytes = out.as_bytes();
    let mut v = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&out[i + 1..i + 3], 16)
        {
            v.push(b);
            i += 3;
            continue;
        }
        v.push(bytes[i]);
        i += 1;
    }
    out = String::from_utf8_lossy(&v).into_owned();
    // Base64 bodies (lettre picks base64 for some texts): decode every long base64 line run.
    use base64::Engine;
    let mut extra = String::new();
    for block in out.split("\n\n").chain(out.split("\r\n\r\n")) {
        let b: String = block.lines().map(str::trim).collect();
        if b.len() > 40
            && let Ok(d) = base64::engine::general_purpose::STANDARD.decode(&b)
        {
            extra.push_str(&String::from_utf8_lossy(&d));
        }
    }
    out.push_str(&extra);
    out
}

fn smtp(port: u16) -> GuestEmailConfig {
    GuestEmailConfig {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}?tls=none")),
        from: Some("Contoso access <noreply@contoso.example>".into()),
        organisation: "Contoso".into(),
        application: "Partner portal".into(),
        poll_interval_seconds: 1,
        retry_initial_ms: 100,
        retries: 3,
        timeout_seconds: 5,
        ..GuestEmailConfig::default()
    }
}

async fn start(issuer: &Issuer, db: &Path, mail: GuestEmailConfig) -> RunningServer {
    common::start(issuer, db, move |c| {
        c.guest_email = mail;
        c.admin_listen = Some(guestlist_server::edge::AdminListen::Off);
    })
    .await
}

/// Signs up `email` through the request-approval connector: a federated guest of `issuer`
/// (Google, …), or an Entra ID user when `issuer` is empty; returns the stored request's id.
async fn sign_up(s: &RunningServer, token: &str, email: &str, idp: &str, locales: &str) -> String {
    let mut body = json!({"email": email, "displayName": "Zoé Ünïcode <b>", "ui_locales": locales});
    if !idp.is_empty() {
        body["identities"] = json!([{"signInType": "federated", "issuer": idp,
            "issuerAssignedId": format!("id-{email}")}]);
    }
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/connectors/request-approval", s.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = c
        .get(format!("{}/api/requests", s.base_url()))
        .query(&[("q", email)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"][0]["id"].as_str().unwrap().to_owned()
}

/// An approver's decision over the approver API (version 1 → 2).
async fn decide(s: &RunningServer, token: &str, id: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/requests/{id}/decision", s.base_url()))
        .bearer_auth(token)
        .header("if-match", "\"1\"")
        .header("idempotency-key", format!("k-{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn approve(how: &str) -> Value {
    json!({"decision": "approve", "directoryObjectId": "11111111-2222-3333-4444-555555555555", "how": how})
}

fn deny() -> Value {
    json!({"decision": "deny", "reason": "unknown company"})
}

fn to_of(m: &str) -> String {
    m.lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn approvals_and_denials_reach_the_guest_in_their_language_entra_guests_excepted() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = free_port();
    let _rx = Receiver::start(port, &maildir).await;
    let s = start(
        &issuer,
        &dir.path().join("g.db"),
        GuestEmailConfig {
            on_deny: true,
            ..smtp(port)
        },
    )
    .await;

    // An Entra ID user approved (invitation path): no e-mail from us.
    let entra = sign_up(&s, &token, "ada@fabrikam.example", "", "en-US").await;
    decide(&s, &token, &entra, approve("invitation")).await;
    // A Google guest signing up in French: the approval e-mail in French.
    let fr = sign_up(&s, &token, "zoe@example.org", "google.com", "fr-FR").await;
    decide(&s, &token, &fr, approve("userCreated")).await;
    let got = wait_for(&maildir, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = decoded(&got[0]);
    assert_eq!(to_of(&got[0]), "zoe@example.org");
    assert!(m.contains("a été approuvée"), "French body: {m}");
    assert!(m.contains("Partner portal") && m.contains("Contoso"), "{m}");
    assert!(m.contains("text/plain") && m.contains("text/html"), "{m}");
    assert!(
        m.contains("&lt;b&gt;") && !m.contains("<b>,</p>"),
        "escaped in HTML: {m}"
    );

    // A Swedish-speaking OTP guest denied: the denial e-mail in Swedish.
    let sv = sign_up(&s, &token, "sven@example.se", "mail", "sv-SE").await;
    decide(&s, &token, &sv, deny()).await;
    let got = wait_for(&maildir, 2).await;
    let denial = got.iter().find(|m| to_of(m) == "sven@example.se").unwrap();
    assert!(
        decoded(denial).contains("har avslagits"),
        "{}",
        decoded(denial)
    );

    // The Entra ID approval, handled first, sent nothing; metrics count the two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages(&maildir).len(), 2);
    assert!(!messages(&maildir).iter().any(|m| to_of(m).contains("ada@")));
    let metrics = s.state.guest_email.render();
    assert!(
        metrics.contains("guestlist_guest_email_sent_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("guestlist_guest_email_failed_total 0"),
        "{metrics}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn no_denial_email_when_on_deny_is_off_and_none_at_all_without_smtp_url() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = free_port();
    let _rx = Receiver::start(port, &maildir).await;

    // Not configured: nothing is sent, whatever is decided.
    let off = start(
        &issuer,
        &dir.path().join("off.db"),
        GuestEmailConfig::default(),
    )
    .await;
    let a = sign_up(&off, &token, "a@example.org", "google.com", "en").await;
    decide(&off, &token, &a, approve("userCreated")).await;
    off.shutdown().await;

    // on_deny off (the default): the denial is passed over, the approval after it is sent.
    let s = start(&issuer, &dir.path().join("g.db"), smtp(port)).await;
    let d = sign_up(&s, &token, "denied@example.org", "google.com", "en").await;
    decide(&s, &token, &d, deny()).await;
    let ok = sign_up(&s, &token, "ok@example.org", "google.com", "en").await;
    decide(&s, &token, &ok, approve("userCreated")).await;
    let got = wait_for(&maildir, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_now = messages(&maildir);
    assert_eq!(got_now.len(), 1, "{got_now:?}");
    assert_eq!(to_of(&got[0]), "ok@example.org");
    assert!(decoded(&got[0]).contains("has been approved"));
    s.shutdown().await;
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_the_email_once_up_and_a_restart_loses_and_repeats_nothing() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("g.db");
    let maildir = dir.path().join("mail");
    let port = free_port();

    // No receiver yet: delivery fails (connection refused), is retried, the cursor stays.
    let s = start(&issuer, &db, smtp(port)).await;
    let first = sign_up(&s, &token, "first@example.org", "google.com", "en").await;
    decide(&s, &token, &first, approve("userCreated")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(messages(&maildir).is_empty());
    let rx = Receiver::start(port, &maildir).await;
    let got = wait_for(&maildir, 1).await;
    assert_eq!(to_of(&got[0]), "first@example.org");

    // The receiver goes down again; a second decision cannot be delivered before the server
    // stops. Its e-mail is still owed after the restart (the cursor is in the database, before
    // it), and the first one is not sent again (the cursor is past it).
    drop(rx);
    let second = sign_up(&s, &token, "second@example.org", "google.com", "en").await;
    decide(&s, &token, &second, approve("userCreated")).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    s.shutdown().await;
    assert_eq!(messages(&maildir).len(), 1);
    let s = start(&issuer, &db, smtp(port)).await;
    let _rx = Receiver::start(port, &maildir).await;
    wait_for(&maildir, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut to: Vec<String> = messages(&maildir).iter().map(|m| to_of(m)).collect();
    to.sort();
    assert_eq!(to, vec!["first@example.org", "second@example.org"]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_request_erased_before_its_email_went_out_is_never_emailed() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let mut claims = issuer.claims("0f0e0d0c-admin-oid", 3600);
    claims["roles"] = json!(["Approver", "Admin"]);
    let admin = issuer.sign(&claims);
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = free_port();

    // The receiver is down: the approval's e-mail waits in the outbox.
    let s = start(&issuer, &dir.path().join("g.db"), smtp(port)).await;
    let gone = sign_up(&s, &token, "gone@example.org", "google.com", "en").await;
    decide(&s, &token, &gone, approve("userCreated")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The person is erased (GDPR Art. 17) before the e-mail could go out.
    let r = reqwest::Client::new()
        .post(format!("{}/api/privacy/erase", s.base_url()))
        .bearer_auth(&admin)
        .json(&json!({"email": "gone@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Up again: a later decision is e-mailed (the job went past the erased one), the erased
    // person never is.
    let _rx = Receiver::start(port, &maildir).await;
    let later = sign_up(&s, &token, "later@example.org", "google.com", "en").await;
    decide(&s, &token, &later, approve("userCreated")).await;
    let got = wait_for(&maildir, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let to: Vec<String> = messages(&maildir).iter().map(|m| to_of(m)).collect();
    assert_eq!(to, vec!["later@example.org"], "{got:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn two_replicas_on_postgresql_send_one_email_per_decision() {
    if !common::on_postgres() {
        // One SQLite file is owned by one process; the replicas share a PostgreSQL database.
        return;
    }
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let maildir = dir.path().join("mail");
    let port = free_port();
    let _rx = Receiver::start(port, &maildir).await;
    let a = start(&issuer, &db, smtp(port)).await;
    let b = start(&issuer, &db, smtp(port)).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        ids.push((
            i,
            sign_up(s, &token, &format!("g{i}@example.org"), "google.com", "en").await,
        ));
    }
    for (i, id) in &ids {
        let s = if i % 2 == 0 { &b } else { &a };
        decide(s, &token, id, approve("userCreated")).await;
    }
    wait_for(&maildir, 6).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut to: Vec<String> = messages(&maildir).iter().map(|m| to_of(m)).collect();
    to.sort();
    let want: Vec<String> = (0..6).map(|i| format!("g{i}@example.org")).collect();
    assert_eq!(to, want, "one e-mail per decision across both replicas");
    a.shutdown().await;
    b.shutdown().await;
}
