//! The two stores mean the same thing (issue 13 "one store interface with two
//! implementations"): each test here runs on the store `GUESTLIST_TEST_STORE` selects (the
//! suite runs on both) and pins one rule on which the SQLite store (`store/*.rs`) and the
//! PostgreSQL store (`store/pg/**`) used to differ, with the answer both now give:
//!
//! - a search with a backslash (PostgreSQL's `LIKE` took it as an escape character);
//! - the audit export does not read a finished source again (PostgreSQL did, every page);
//! - reminders due "created at or before" a second, and event compaction "before" an instant,
//!   compare the fraction of the second (SQLite cut the stored time to whole seconds);
//! - the latest event number survives the compaction of every event (SQLite fell to 0, so a
//!   `Last-Event-ID` of a compacted event was "ahead of the store");
//! - a claim holding NUL (PostgreSQL refused it with 500; both now store U+FFFD);
//! - requests listed in created order within one second (SQLite sorted its time text);
//! - a denial denies, and a reopen reopens, the same person's other requests oldest first
//!   (SQLite's read had no `ORDER BY`: the order was its query planner's choice).

use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, Decision, Event};
use guestlist_core::policy::Policy;
use guestlist_server::RunningServer;
use guestlist_server::store::reopen::ReopenOutcome;
use guestlist_server::store::{ExportCursor, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::{self, Issuer};

/// A fixed instant on a whole second (2027-01-15T08:00:00Z): the tests add fractions to it.
fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn ms(n: i64) -> time::Duration {
    time::Duration::milliseconds(n)
}

/// A federated guest `email` of identity provider `idp`, with `display_name`.
fn guest(email: &str, idp: &str, display_name: &str) -> Claims {
    Claims::from_json(json!({
        "email": email,
        "displayName": display_name,
        "identities": [{"signInType": "federated", "issuer": idp, "issuerAssignedId": email}]
    }))
    .unwrap()
}

fn actor() -> Actor {
    Actor::policy("store-parity")
}

/// Stores a new pending request for `c` at `at`; returns its `request.created` event.
async fn ask(store: &Store, c: &Claims, at: OffsetDateTime) -> Event {
    store
        .request_approval(c, &Policy::default(), at, time::Duration::ZERO)
        .await
        .unwrap()
        .event
        .expect("a new request is stored")
}

/// `GET /api/requests` as `token`, searching for `q` when given: the page (asserted 200).
async fn list_requests(s: &RunningServer, token: &str, q: Option<&str>) -> Value {
    let mut req = reqwest::Client::new()
        .get(format!("{}/api/requests", s.base_url()))
        .bearer_auth(token);
    if let Some(q) = q {
        req = req.query(&[("q", q)]);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let page: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "q={q:?}: {page}");
    page
}

/// Denies request `id` (at version 1) with `reason` over the approver API as `token`, under
/// `Idempotency-Key: key`: the status and the answer's body.
async fn deny_over_api(
    s: &RunningServer,
    token: &str,
    id: &str,
    key: &str,
    reason: &str,
) -> (reqwest::StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/requests/{id}/decision", s.base_url()))
        .bearer_auth(token)
        .header("if-match", "\"1\"")
        .header("idempotency-key", key)
        .json(&json!({"decision": "deny", "reason": reason}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Denies `id` in the store as the policy actor at `at`.
async fn deny_at(store: &Store, id: uuid::Uuid, at: OffsetDateTime) {
    let deny = Decision::Deny {
        reason: "no".into(),
    };
    store
        .decide(id, &deny, &actor(), None, None, at)
        .await
        .unwrap();
}

/// `GET /api/requests?q=` with a backslash: it is a character like any other (SQLite's `LIKE`
/// has no escape character). PostgreSQL's `LIKE` took `\` as its escape: `ann\lee` found
/// nothing (`\l` is `l`), and a search ending in `\` failed with 500 `store.failure`
/// ("LIKE pattern must not end with escape character").
#[tokio::test]
async fn a_search_with_a_backslash_matches_the_backslash() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    for (email, name) in [
        ("ann@fabrikam.example", r"Ann\Lee"),
        ("bob@fabrikam.example", "Annlee Bob"),
    ] {
        s.state
            .request_approval(&guest(email, "google.com", name))
            .await
            .unwrap();
    }
    let search = async |q: &str| {
        let body = list_requests(&s, &token, Some(q)).await;
        let mut emails: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"]["email"].as_str().unwrap().to_owned())
            .collect();
        emails.sort();
        emails
    };
    assert_eq!(search(r"ann\lee").await, ["ann@fabrikam.example"]);
    assert_eq!(search(r"ann\").await, ["ann@fabrikam.example"]);
    assert_eq!(search(r"\").await, ["ann@fabrikam.example"]);
    assert_eq!(
        search("annlee").await,
        ["bob@fabrikam.example"],
        "no backslash: the other one"
    );
    s.shutdown().await;
}

/// The audit export's cursor says which source is finished: the next page does not read it
/// again (`ExportCursor` docs), so a decision made after the export started is left out, as a
/// snapshot would, and the page reads only the other source. PostgreSQL read both sources
/// again on every page (2 reads instead of 1) and returned the later decision.
#[tokio::test]
async fn the_audit_export_does_not_read_a_finished_source_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let first = ask(&store, &guest("p0@x.example", "google.com", "P0"), t0()).await;
    deny_at(&store, first.request_id, t0() + ms(1_000)).await;
    for i in 2..5 {
        store
            .audit(
                t0() + ms(1_000 * i),
                guestlist_server::store::audit::AuditAction::Export,
                None,
                &actor(),
                json!({ "n": i }),
            )
            .await
            .unwrap();
    }
    let page = store
        .audit_export_page(None, None, ExportCursor::default(), 2)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2, "{:?}", page.records);
    let next = page.next.expect("operations are left");
    assert!(
        next.history_done,
        "the only decision was returned: {next:?}"
    );
    assert!(!next.audit_done, "{next:?}");
    // A decision made while the export is under way.
    let later = ask(&store, &guest("p1@x.example", "google.com", "P1"), t0()).await;
    deny_at(&store, later.request_id, t0() + ms(10_000)).await;
    let rest = store
        .audit_export_page(None, None, next, 100)
        .await
        .unwrap();
    assert_eq!(rest.pages_read, 1, "only the operations are read");
    let actions: Vec<&str> = rest.records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["privacy.export", "privacy.export"]);
    assert!(rest.next.is_none());
}

/// Reminders: a request is due when it was created at or before `created_by` — with its
/// fraction of a second. SQLite compared `unixepoch(created_at)`, whole seconds, so a request
/// created 0.4 s after the bound was due (and recorded as reminded) a second early.
#[tokio::test]
async fn reminders_due_compare_the_fraction_of_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let bound = t0().unix_timestamp();
    let on_time = ask(&store, &guest("a@x.example", "google.com", "A"), t0()).await;
    let after = ask(
        &store,
        &guest("b@x.example", "google.com", "B"),
        t0() + ms(400),
    )
    .await;
    let (count, due) = store.pending_due(bound, 0, 10).await.unwrap();
    assert_eq!(count, 1, "created 0.4 s after the bound: not due yet");
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        [on_time.request_id]
    );
    store
        .record_reminded_due(bound, 0, bound + 1)
        .await
        .unwrap();
    let reminded = store.reminded().await.unwrap();
    assert!(reminded.contains_key(&on_time.request_id));
    assert!(
        !reminded.contains_key(&after.request_id),
        "recorded as reminded early: {reminded:?}"
    );
    // A second later, counting reminders made up to then as not yet made.
    let (count, _) = store.pending_due(bound + 1, bound + 1, 10).await.unwrap();
    assert_eq!(count, 2, "due a second later");
}

/// Event compaction deletes the events that happened before `before`, to the fraction of a
/// second. SQLite compared whole seconds and kept an event 0.5 s older than `before`.
#[tokio::test]
async fn event_compaction_compares_the_fraction_of_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    ask(
        &store,
        &guest("a@x.example", "google.com", "A"),
        t0() + ms(200),
    )
    .await;
    ask(
        &store,
        &guest("b@x.example", "google.com", "B"),
        t0() + ms(900),
    )
    .await;
    let n = store.compact_events(t0() + ms(700), 100).await.unwrap();
    assert_eq!(n, 1, "the event at .2 s is before .7 s");
    let left = store.events_after(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].request.as_ref().unwrap().key.email, "b@x.example");
}

/// The latest event number is the last one given out, even when compaction deleted every
/// stored event: the next event takes the number after it, and a stream resuming with
/// `Last-Event-ID` of a compacted event is not "ahead of the store". SQLite answered
/// `MAX(seq)` of the rows left: 0.
#[tokio::test]
async fn the_latest_event_number_survives_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let mut last = 0;
    for i in 0..3 {
        last = ask(
            &store,
            &guest(&format!("p{i}@x.example"), "google.com", "P"),
            t0(),
        )
        .await
        .seq;
    }
    assert_eq!(store.latest_event_seq().await.unwrap(), last);
    let n = store
        .compact_events(t0() + time::Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    assert_eq!(store.latest_event_seq().await.unwrap(), last);
    let next = ask(&store, &guest("q@x.example", "google.com", "Q"), t0()).await;
    assert!(next.seq > last);
    assert_eq!(store.latest_event_seq().await.unwrap(), next.seq);
}

/// A denial denies the same person's other pending requests (issue 10 §6) oldest first, and
/// reopening it reopens them in that order: the events, history and `reopenedWith` list are in
/// created order. PostgreSQL's reads say `ORDER BY created_at, id`; SQLite's said no order (this
/// passed before too: its planner happened to scan in created order), now it says the same.
#[tokio::test]
async fn the_same_persons_requests_are_denied_and_reopened_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let email = "kim@fabrikam.example";
    // Created in an order that is not the identity providers' order.
    let mut created = Vec::new();
    for (i, idp) in ["zz.example", "mm.example", "aa.example"]
        .iter()
        .enumerate()
    {
        let at = t0() + ms(1_000 * i64::try_from(i).unwrap());
        created.push(ask(&store, &guest(email, idp, "Kim"), at).await.request_id);
    }
    let denied = ask(&store, &guest(email, "live.com", "Kim"), t0() + ms(5_000)).await;
    let deny = Decision::Deny {
        reason: "no".into(),
    };
    let now = t0() + ms(6_000);
    let (r, events) = store
        .decide_all(denied.request_id, &deny, &actor(), Some(1), None, now)
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.request_id).collect();
    assert_eq!(ids[0], denied.request_id);
    assert_eq!(ids[1..], created[..], "denied with it, oldest first");
    let outcome = store
        .reopen(r.id, "appealed", &actor(), r.version, now + ms(1_000))
        .await
        .unwrap();
    let ReopenOutcome::Reopened { events, .. } = outcome else {
        panic!("reopened");
    };
    let ids: Vec<_> = events.iter().map(|e| e.request_id).collect();
    assert_eq!(ids[0], denied.request_id);
    assert_eq!(ids[1..], created[..], "reopened with it, oldest first");
    let audit = store.audit_page(0, 10).await.unwrap();
    let with: Vec<uuid::Uuid> =
        serde_json::from_value(audit[0].detail["reopenedWith"].clone()).unwrap();
    assert_eq!(with, created);
}

/// A claim holding U+0000 (NUL), which a caller can send as `\u0000` in the connector's JSON
/// body: both stores take the sign-up and answer as for any other, and a search for it finds
/// it. PostgreSQL cannot hold NUL in `text` or `jsonb`, so its store failed the call with 500
/// `store.failure` while SQLite stored it; claims now carry U+FFFD in its place
/// (`guestlist_core::connector`), and so does a search.
#[tokio::test]
async fn a_claim_with_a_nul_character_is_stored_by_both() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let client = reqwest::Client::new();
    let body = json!({"email": "nul@fabrikam.example", "displayName": "Ann\u{0}Lee",
        "companyName": "\u{0}", "identities": [{"signInType": "federated",
        "issuer": "google.com", "issuerAssignedId": "id\u{0}1"}]});
    for (connector, expected) in [
        ("request-approval", "requested"),
        ("check-approval-status", "approval-pending"),
    ] {
        let r = client
            .post(format!("{}/connectors/{connector}", s.base_url()))
            .basic_auth("entra-user-flow", Some("correct horse battery staple"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{connector}: {answer}");
        let code = answer["code"].as_str().unwrap_or_default().to_lowercase();
        assert!(code.ends_with(expected), "{connector}: {answer}");
    }
    let page = list_requests(&s, &token, Some("ann\u{0}lee")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    s.shutdown().await;
}

/// An approver's text holding NUL: a denial's reason sent over the approver API, then a
/// reopen's reason and an actor's name. Both stores keep U+FFFD in its place, as in claims;
/// PostgreSQL failed the decision with 500 `store.failure` (and the reopen with
/// `StoreError::Backend`), while SQLite stored the NUL.
#[tokio::test]
async fn a_decision_and_a_reopen_holding_nul_are_stored_by_both() {
    let issuer = Issuer::start().await;
    let token = issuer.token("approver-1");
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    s.state
        .request_approval(&guest("kim@fabrikam.example", "google.com", "Kim"))
        .await
        .unwrap();
    let page = list_requests(&s, &token, None).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = deny_over_api(&s, &token, &id, "nul-1", "no\u{0}way").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("no\u{FFFD}way"), "{body}");
    // The same key and body again: the stored answer (the fingerprint is of the stored text).
    let (again, body) = deny_over_api(&s, &token, &id, "nul-1", "no\u{0}way").await;
    assert_eq!(again, 200, "{body}");
    let id: uuid::Uuid = id.parse().unwrap();
    let mut admin = actor();
    admin.name = "Ad\u{0}min".into();
    let outcome = s
        .state
        .store
        .reopen(id, "appeal\u{0}", &admin, 2, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let ReopenOutcome::Reopened { request, .. } = outcome else {
        panic!("reopened");
    };
    assert_eq!(request.version, 3);
    let history = s.state.store.history(id).await.unwrap();
    let reopened = history.last().unwrap();
    assert_eq!(reopened.detail["reason"], "appeal\u{FFFD}");
    assert_eq!(reopened.actor.name, "Ad\u{FFFD}min");
    s.shutdown().await;
}

/// Requests are listed in created order to the fraction of a second, one page at a time or
/// all at once. SQLite compared its stored text, whose shortest RFC 3339 form puts a whole
/// second (`…:00Z`) after its own fractions (`…:00.1Z`), and `…:00.15Z` before `…:00.1Z`: it
/// listed these three in the reverse order. It now writes every time with nine fractional
/// digits (and its migration rewrites the stored ones).
#[tokio::test]
async fn requests_are_listed_in_created_order_to_the_fraction_of_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    for (email, at) in [
        ("a@x.example", t0() + ms(100)),
        ("b@x.example", t0()),
        ("c@x.example", t0() + ms(150)),
    ] {
        ask(&store, &guest(email, "google.com", "P"), at).await;
    }
    let expected = ["b@x.example", "a@x.example", "c@x.example"];
    let all = store.list(None, None, None, 10).await.unwrap();
    let emails: Vec<&str> = all.items.iter().map(|r| r.key.email.as_str()).collect();
    assert_eq!(emails, expected);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(None, None, cursor.as_deref(), 1).await.unwrap();
        paged.extend(page.items.into_iter().map(|r| r.key.email));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(paged.len() <= expected.len(), "{paged:?}");
    }
    assert_eq!(paged, expected);
}
