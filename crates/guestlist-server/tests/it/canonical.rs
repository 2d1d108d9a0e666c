//! One canonical e-mail (issue 10 §6) over real HTTP on 127.0.0.1 with real SQLite files:
//! variants of a denied address (fullwidth, upper-case, Kelvin sign, zero-width-laced) are
//! blocked and store nothing; a fullwidth domain does not escape auto-deny; a denial denies the
//! same person's request through another identity provider and outlives expiry; auto-approve
//! never fires for an Entra ID sign-up; a database written by the old code is migrated to
//! canonical keys.

// `..ConnectorAuth::default()` keeps this file building as connector authentication grows.
#![allow(clippy::needless_update)]

use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, Decision, ProvisionedBy, RequestState};
use guestlist_core::policy::{ExpiredBehaviour, Policy, Rule};
use guestlist_server::config::{ConnectorAuth, Secret};
use guestlist_server::{Config, RunningServer};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::{self, PASS, USER};

async fn start(policy: Policy, db: &std::path::Path) -> RunningServer {
    start_on(policy, common::database(db)).await
}

async fn start_on(policy: Policy, database: guestlist_server::store::DatabaseUrl) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        policy,
        ..Config::default()
    };
    common::spawn(config).await
}

/// Calls a connector endpoint; returns the HTTP status, the `action` and the `code`.
async fn call(s: &RunningServer, which: &str, body: &Value) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/connectors/{which}", s.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (status, s("action"), s("code"))
}

/// Claims of a sign-up with `email` through `issuer` (`None`: an Entra ID user, no
/// `identities`).
fn signup(email: &str, issuer: Option<(&str, &str)>) -> Value {
    let mut v = json!({"email": email, "displayName": "Ada Lovelace"});
    if let Some((issuer, id)) = issuer {
        v["identities"] =
            json!([{"signInType": "federated", "issuer": issuer, "issuerAssignedId": id}]);
    }
    v
}

fn claims(v: &Value) -> Claims {
    Claims::from_json(v.clone()).unwrap()
}

fn approver() -> Actor {
    Actor {
        kind: "user".into(),
        id: "00000000-0000-0000-0000-00000000ada1".into(),
        name: "Approver".into(),
        username: None,
        client: None,
    }
}

fn deny() -> Decision {
    Decision::Deny {
        reason: "not a partner".into(),
    }
}

/// The stored request of the sign-up `v`.
async fn id_of(
    store: &guestlist_server::store::Store,
    v: &Value,
) -> guestlist_core::model::ApprovalRequest {
    store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.key == guestlist_core::IdentityKey::of(&claims(v)))
        .unwrap()
}

async fn count(s: &RunningServer) -> usize {
    s.state
        .store
        .list(None, None, None, 500)
        .await
        .unwrap()
        .items
        .len()
}

const BLOCK: &str = "ShowBlockPage";
const DENIED: &str = "GUESTLIST-APPROVAL-DENIED";

#[tokio::test]
async fn variants_of_a_denied_address_are_blocked_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Policy::default(), &dir.path().join("g.db")).await;
    for email in ["ada@example.com", "kim@example.com"] {
        let (st, action, code) = call(
            &s,
            "request-approval",
            &signup(email, Some(("google.com", email))),
        )
        .await;
        assert_eq!((st, action.as_str()), (200, BLOCK), "{email}");
        assert_eq!(code, "GUESTLIST-APPROVAL-REQUESTED");
    }
    for r in s
        .state
        .store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
    {
        s.state
            .store
            .decide(r.id, &deny(), &approver(), Some(r.version), None, now())
            .await
            .unwrap();
    }
    assert_eq!(count(&s).await, 2);
    for (variant, expected) in [
        ("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ", DENIED),
        ("ａｄａ@ｅｘａｍｐｌｅ．ｃｏｍ", DENIED),
        ("ADA@EXAMPLE.COM", DENIED),
        ("Ada@Example.Com", DENIED),
        ("\u{212A}im@example.com", DENIED),
        ("\u{212A}IM@EXAMPLE.COM", DENIED),
        (
            "a\u{200B}da@example.com",
            "GUESTLIST-APPROVAL-EMAIL-REFUSED",
        ),
        (
            "ada\u{2060}@example.com",
            "GUESTLIST-APPROVAL-EMAIL-REFUSED",
        ),
        (
            "ada@exa\u{200D}mple.com",
            "GUESTLIST-APPROVAL-EMAIL-REFUSED",
        ),
        (
            "\u{202E}moc.elpmaxe@ada",
            "GUESTLIST-APPROVAL-EMAIL-REFUSED",
        ),
        (
            "ada@example.com\u{FEFF}",
            "GUESTLIST-APPROVAL-EMAIL-REFUSED",
        ),
    ] {
        for issuer in [
            Some(("facebook.com", "fb-1")),
            Some(("mail", variant)),
            None,
        ] {
            let body = signup(variant, issuer);
            for endpoint in ["check-approval-status", "request-approval"] {
                let (st, action, code) = call(&s, endpoint, &body).await;
                assert_eq!(
                    (st, action.as_str(), code.as_str()),
                    (200, BLOCK, expected),
                    "{endpoint} {variant:?} via {issuer:?}"
                );
            }
        }
    }
    assert_eq!(count(&s).await, 2, "no variant created a request");
    // The in-memory check index exists on SQLite only (PostgreSQL reads the table).
    if let Some(sqlite) = s.state.store.sqlite() {
        let (mismatches, n) = sqlite.verify_check_index(&[]).unwrap();
        assert!(mismatches.is_empty(), "{mismatches:?}");
        assert_eq!(n, 2);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_fullwidth_domain_does_not_escape_auto_deny() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_deny: vec![Rule {
            name: "spam".into(),
            email_domains: vec!["spam.example".into()],
            identity_providers: vec![],
        }],
        ..Policy::default()
    };
    let s = start(policy, &dir.path().join("d.db")).await;
    for (i, email) in [
        "x@ｓｐａｍ．ｅｘａｍｐｌｅ",
        "y@SPAM.EXAMPLE",
        "z@ｓｐａｍ.example",
    ]
    .into_iter()
    .enumerate()
    {
        let (st, action, code) = call(
            &s,
            "request-approval",
            &signup(email, Some(("google.com", &i.to_string()))),
        )
        .await;
        assert_eq!(
            (st, action.as_str(), code.as_str()),
            (200, BLOCK, "GUESTLIST-APPROVAL-AUTO-DENIED"),
            "{email}"
        );
    }
    let page = s.state.store.list(None, None, None, 10).await.unwrap();
    assert!(
        page.items.iter().all(
            |r| r.key.email.ends_with("@spam.example") && r.state.status().as_str() == "denied"
        )
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_denial_denies_the_same_persons_request_through_another_provider() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Policy::default(), &dir.path().join("p.db")).await;
    let google = signup("ada@example.com", Some(("google.com", "g-1")));
    let otp = signup("ＡＤＡ@Example.com", Some(("mail", "ada@example.com")));
    let entra = signup("Ada@EXAMPLE.com", None);
    let other = signup("bob@example.com", Some(("google.com", "g-2")));
    for body in [&google, &otp, &entra, &other] {
        let (_, _, code) = call(&s, "request-approval", body).await;
        assert_eq!(code, "GUESTLIST-APPROVAL-REQUESTED");
    }
    let store = &s.state.store;
    let first = id_of(store, &google).await;
    let before = store.events_after(0, 100).await.unwrap().len();
    store
        .decide(
            first.id,
            &deny(),
            &approver(),
            Some(first.version),
            None,
            now(),
        )
        .await
        .unwrap();
    for body in [&google, &otp, &entra] {
        let r = id_of(store, body).await;
        assert!(
            matches!(r.state, RequestState::Denied { .. }),
            "{:?}: {:?}",
            r.key,
            r.state
        );
        let (_, action, code) = call(&s, "check-approval-status", body).await;
        assert_eq!((action.as_str(), code.as_str()), (BLOCK, DENIED));
    }
    // The other person is untouched; the cascade is in the event log (one event each).
    assert_eq!(id_of(store, &other).await.state, RequestState::Pending);
    let events = store.events_after(0, 100).await.unwrap();
    assert_eq!(events.len() - before, 3, "the denial and two cascaded ones");
    let history = store.history(id_of(store, &otp).await.id).await.unwrap();
    assert_eq!(history.last().unwrap().action, "denied");
    s.shutdown().await;
}

#[tokio::test]
async fn a_denial_outlives_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        expire_after_days: Some(1),
        expired: ExpiredBehaviour::AllowReRequest,
        ..Policy::default()
    };
    let s = start(policy.clone(), &dir.path().join("e.db")).await;
    let store = &s.state.store;
    // The Facebook request is three days old: it expires at the next check.
    let facebook = signup("Ada@Example.com", Some(("facebook.com", "fb-1")));
    store
        .request_approval(
            &claims(&facebook),
            &policy,
            now() - time::Duration::days(3),
            time::Duration::seconds(120),
        )
        .await
        .unwrap();
    let (_, action, _) = call(&s, "check-approval-status", &facebook).await;
    assert_eq!(action, "Continue", "expired, re-request allowed");
    // The same person through Google is denied today.
    let google = signup("ada@example.com", Some(("google.com", "g-1")));
    call(&s, "request-approval", &google).await;
    let denied = store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.state == RequestState::Pending)
        .unwrap();
    store
        .decide(
            denied.id,
            &deny(),
            &approver(),
            Some(denied.version),
            None,
            now(),
        )
        .await
        .unwrap();
    // The expired Facebook request does not re-open the denied person.
    for endpoint in ["check-approval-status", "request-approval"] {
        let (_, action, code) = call(&s, endpoint, &facebook).await;
        assert_eq!(
            (action.as_str(), code.as_str()),
            (BLOCK, DENIED),
            "{endpoint}"
        );
    }
    let statuses: Vec<&str> = store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.state.status().as_str())
        .collect();
    assert_eq!(statuses, ["expired", "denied"]);
    s.shutdown().await;
}

#[tokio::test]
async fn auto_approve_does_not_fire_for_an_entra_id_sign_up() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_approve: vec![Rule {
            name: "partners".into(),
            email_domains: vec!["fabrikam.com".into()],
            identity_providers: vec![],
        }],
        ..Policy::default()
    };
    let s = start(policy, &dir.path().join("a.db")).await;
    // An Entra ID user (no `identities`): any tenant's admin can set `mail` to this.
    let (_, action, code) = call(&s, "request-approval", &signup("ceo@fabrikam.com", None)).await;
    assert_eq!(
        (action.as_str(), code.as_str()),
        (BLOCK, "GUESTLIST-APPROVAL-REQUESTED")
    );
    // An Entra ID authority federated as an OIDC provider is no better.
    let aad = signup(
        "cfo@fabrikam.com",
        Some((
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
            "x",
        )),
    );
    let (_, _, code) = call(&s, "request-approval", &aad).await;
    assert_eq!(code, "GUESTLIST-APPROVAL-REQUESTED");
    // A federated identity (Google) is auto-approved.
    let (_, action, _) = call(
        &s,
        "request-approval",
        &signup("cto@fabrikam.com", Some(("google.com", "g-9"))),
    )
    .await;
    assert_eq!(action, "Continue");
    let statuses: Vec<&str> = s
        .state
        .store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.state.status().as_str())
        .collect();
    assert_eq!(statuses, ["pending", "pending", "approved"]);
    s.shutdown().await;
}

/// The schema the old code shipped (migrations 1 and 2), verbatim.
const OLD_SCHEMA: &str = r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issuer_assigned_id TEXT NOT NULL,
    status TEXT NOT NULL,
    state_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    decided_by_json TEXT,
    attempts INTEGER NOT NULL,
    claims_json TEXT NOT NULL,
    search TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX requests_key ON requests(email, issuer, issuer_assigned_id);
CREATE INDEX requests_status_order ON requests(status, created_at, id);
CREATE INDEX requests_order ON requests(created_at, id);
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    detail_json TEXT NOT NULL
) STRICT;
CREATE INDEX history_request ON history(request_id, id);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    request_json TEXT NOT NULL
) STRICT;
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response_json TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
ALTER TABLE requests ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
UPDATE requests SET change_seq = rowid;
CREATE INDEX requests_change ON requests(change_seq);
CREATE TABLE reminded (
    request_id TEXT PRIMARY KEY,
    at_unix INTEGER NOT NULL
) STRICT;
PRAGMA user_version = 2;
"#;

/// Inserts a row as the old code wrote it: the key's e-mail is `email.trim().to_lowercase()`.
fn old_row(
    db: &rusqlite::Connection,
    seq: i64,
    email: &str,
    issuer: &str,
    iaid: &str,
    state: &RequestState,
) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let mut claims = json!({"email": email, "displayName": "Person"});
    if !issuer.is_empty() {
        claims["identities"] =
            json!([{"signInType":"federated","issuer":issuer,"issuerAssignedId":iaid}]);
    }
    let created = format!("2026-01-01T00:00:{seq:02}Z");
    db.execute(
        "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, search, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, NULL, 1, ?8, ?9, ?10)",
        rusqlite::params![
            id,
            email.trim().to_lowercase(),
            issuer,
            iaid,
            state.status().as_str(),
            serde_json::to_string(state).unwrap(),
            created,
            claims.to_string(),
            format!("{} person", email.to_lowercase()),
            seq
        ],
    )
    .unwrap();
    id
}

#[tokio::test]
async fn a_database_of_the_old_code_is_migrated_to_canonical_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let denied = RequestState::Denied {
        reason: "no".into(),
    };
    let (ada, ada_variant, bob1, bob2, kim) = {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(OLD_SCHEMA).unwrap();
        let ada = old_row(&db, 1, "ada@example.com", "google.com", "g-1", &denied);
        // The old code let the fullwidth variant through to a fresh pending request.
        let ada_variant = old_row(
            &db,
            2,
            "ａｄａ@ｅｘａｍｐｌｅ．ｃｏｍ",
            "",
            "",
            &RequestState::Pending,
        );
        // Two rows of one identity whose keys become equal: the approved one keeps the key.
        let bob1 = old_row(
            &db,
            3,
            "ｂｏｂ@example.com",
            "google.com",
            "g-2",
            &RequestState::Pending,
        );
        let bob2 = old_row(
            &db,
            4,
            "bob@example.com",
            "google.com",
            "g-2",
            &RequestState::Approved {
                directory_object_id: Some("u-1".into()),
                how: ProvisionedBy::UserCreated,
            },
        );
        let kim = old_row(
            &db,
            5,
            "Kim@Bücher.example",
            "mail",
            "kim",
            &RequestState::Pending,
        );
        (ada, ada_variant, bob1, bob2, kim)
    };
    // SQLite-only: the database of the old code is a SQLite file (PostgreSQL starts canonical).
    let s = start_on(
        Policy::default(),
        guestlist_server::store::DatabaseUrl::Sqlite(path.clone()),
    )
    .await;
    let store = &s.state.store;
    let all = store.list(None, None, None, 10).await.unwrap().items;
    let get = |id: &str| {
        let id: uuid::Uuid = id.parse().unwrap();
        all.iter().find(|r| r.id == id).cloned().unwrap()
    };
    assert_eq!(get(&ada).key.email, "ada@example.com");
    let v = get(&ada_variant);
    assert_eq!(v.key.email, "ada@example.com");
    assert!(
        matches!(v.state, RequestState::Denied { .. }),
        "the pending variant of a denied person is denied: {:?}",
        v.state
    );
    assert_eq!(
        store.history(v.id).await.unwrap().last().unwrap().action,
        "denied"
    );
    assert_eq!(get(&bob2).key.issuer_assigned_id, "g-2");
    assert_eq!(get(&bob1).key.email, "bob@example.com");
    assert_eq!(
        get(&bob1).key.issuer_assigned_id,
        format!("g-2#merged-{bob1}")
    );
    assert_eq!(get(&kim).key.email, "kim@xn--bcher-kva.example");
    // Nothing was lost, and the check index agrees with the table.
    assert_eq!(count(&s).await, 5);
    let (mismatches, n) = store.sqlite().unwrap().verify_check_index(&[]).unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    assert_eq!(n, 5);
    // The answers follow the canonical keys.
    for (body, code) in [
        (
            signup("ＡＤＡ@example.com", Some(("facebook.com", "f"))),
            DENIED,
        ),
        (
            signup("BOB@example.com", Some(("google.com", "g-2"))),
            "GUESTLIST-APPROVAL-APPROVED",
        ),
        (
            signup("kim@xn--bcher-kva.example", Some(("mail", "kim"))),
            "GUESTLIST-APPROVAL-PENDING",
        ),
    ] {
        let (_, action, got) = call(&s, "check-approval-status", &body).await;
        assert_eq!((action.as_str(), got.as_str()), (BLOCK, code), "{body}");
    }
    // Search folds too.
    let found = store
        .list(None, Some("ＫＩＭ@BÜCHER"), None, 10)
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    s.shutdown().await;
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
