//! Hostile sign-ups against the webhook and reminders (issue 10 §4): a display name made of
//! Slack control sequences and markdown links is rendered inert in the Slack and Teams bodies,
//! a failed delivery's log lines never carry the (secret) webhook URL, and a reminder about
//! 10,000 pending requests is a count plus the oldest few, with a bounded body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use guestlist_core::connector::Claims;
use guestlist_core::model::{ApprovalRequest, IdentityKey, RequestState};
use guestlist_core::policy::Policy;
use guestlist_server::config::Secret;
use guestlist_server::reminders;
use guestlist_server::webhook::{Notifications, Sender, Template};
use serde_json::json;
use tracing::instrument::WithSubscriber;

use crate::common;

const EVIL: &str = "&amp; <!channel> <https://evil.example|Open Guestlist> [Open Guestlist](https://evil.example) **urgent** <@U123>";

fn request(name: &str) -> ApprovalRequest {
    let claims = json!({"displayName": name, "email": "mallory@evil.example"});
    ApprovalRequest {
        id: uuid::Uuid::from_u128(7),
        key: IdentityKey {
            email: "mallory@evil.example".into(),
            issuer: "https://evil.example/idp".into(),
            issuer_assigned_id: "m-1".into(),
        },
        state: RequestState::Pending,
        version: 1,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
        decided_by: None,
        attempts: 1,
        flow: Default::default(),
        completed_at: None,
        escalated_at: None,
        claims: claims.as_object().cloned().unwrap_or_default(),
        grants: Vec::new(),
        route: None,
        approvals_required: 1,
        approvals: Vec::new(),
    }
}

fn sender(template: Template, url: &str) -> Sender {
    Sender::new(&Notifications {
        webhook_url: Some(Secret(url.into())),
        template,
        retries: 0,
        link: Some("https://guestlist.contoso.com".into()),
        ..Notifications::default()
    })
    .unwrap()
}

#[test]
fn a_hostile_display_name_is_inert_in_slack_and_teams() {
    let r = request(EVIL);
    let slack =
        sender(Template::Slack, "https://hooks.slack.com/services/T/B/x").created_message(&r);
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    // The only links (`<…|…>`) and the only `<`s are the two Guestlist makes itself, at the
    // end: the request's deep link into the app, then the configured web link.
    assert_eq!(text.matches('<').count(), 2, "{text}");
    assert!(
        text.ends_with(
            "<guestlist://request/00000000-0000-0000-0000-000000000007|Open in the app> \
             <https://guestlist.contoso.com|Open Guestlist>"
        ),
        "{text}"
    );
    assert!(
        !text.contains("evil.example"),
        "a claim's domain could be auto-linked: {text}"
    );
    assert!(!text.contains("https://evil"), "{text}");
    assert!(text.contains("&amp;amp;"), "`&` escaped: {text}");

    let teams = sender(Template::Teams, "https://contoso.webhook.office.com/x").created_message(&r);
    let card = teams.to_string();
    assert!(!card.contains("evil.example"), "{card}");
    assert!(
        !card.contains("](") && !card.contains("**"),
        "markdown link or emphasis: {card}"
    );
    assert!(!card.contains("<!channel>"), "{card}");
    let name_fact = &teams["attachments"][0]["content"]["body"][2]["facts"][0]["value"];
    assert!(
        name_fact.as_str().unwrap().contains("\\[Open Guestlist\\]"),
        "{name_fact}"
    );
    // The card's only actions are Guestlist's own links: the deep link, then the configured one.
    let actions = teams["attachments"][0]["content"]["body"][3]["actions"]
        .as_array()
        .unwrap();
    let urls: Vec<&str> = actions.iter().map(|a| a["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [
            "guestlist://request/00000000-0000-0000-0000-000000000007",
            "https://guestlist.contoso.com"
        ]
    );
}

#[test]
fn long_fields_are_cut() {
    let r = request(&"A".repeat(10_000));
    for t in [Template::Json, Template::Slack, Template::Teams] {
        let body = sender(t, "https://hooks.example/x")
            .created_message(&r)
            .to_string();
        assert!(body.len() < 3_000, "{t:?}: {} bytes", body.len());
        assert!(body.contains('…'), "{t:?}");
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_delivery_never_logs_the_webhook_url() {
    // Port 1 on loopback: nothing listens, the connection is refused. The secret is the path
    // (as in Slack's and Teams' webhook URLs); every level is captured, the HTTP stack's too.
    let secret = "services/T0000/B0000/XXXXsecretXXXX";
    let url = format!("http://127.0.0.1:1/{secret}");
    let logs = Captured::default();
    let w = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let s = sender(Template::Slack, &url);
    let ok = s
        .deliver(&s.created_message(&request("Ada")))
        .with_subscriber(subscriber)
        .await;
    assert!(!ok);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("webhook unreachable"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!format!("{s:?}").contains(secret), "Debug of the sender");
}

#[tokio::test]
async fn a_reminder_about_10000_pending_requests_is_a_count_and_the_oldest_few() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let t0 = time::OffsetDateTime::now_utc() - time::Duration::hours(48);
    let policy = Policy::default();
    // Written 250 at a time on SQLite (one writer, group commit); on PostgreSQL 25 at a time,
    // within its connection pool (the fill's speed is not what this test is about).
    let per_chunk: i64 = if common::on_postgres() { 25 } else { 250 };
    for chunk in 0..10_000 / per_chunk {
        let calls = (0..per_chunk).map(|i| {
            let n = chunk * per_chunk + i;
            let store = store.clone();
            let policy = policy.clone();
            async move {
                let c = Claims::from_json(json!({"email": format!("p{n}@fabrikam.com"),
                    "displayName": format!("Person {n} {}", "x".repeat(200))}))
                .unwrap();
                let at = t0 + time::Duration::seconds(n);
                store
                    .request_approval(&c, &policy, at, time::Duration::seconds(120))
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(calls).await;
    }
    let now = time::OffsetDateTime::now_utc();
    let due = reminders::due(&store, 24, now).await.unwrap();
    assert_eq!(due.count, 10_000);
    assert_eq!(due.oldest.len(), reminders::LISTED, "rows read");
    assert!(due.oldest[0].key.email == "p0@fabrikam.com", "oldest first");
    for t in [Template::Json, Template::Slack, Template::Teams] {
        let body = sender(t, "https://hooks.example/x")
            .reminder_message(due.count, &due.oldest, 24)
            .to_string();
        assert!(body.len() < 16 * 1024, "{t:?}: {} bytes", body.len());
        assert!(body.contains("10000"), "{t:?}: the count is given");
    }
    // All 10,000 were recorded as reminded: none is due again within the period.
    let again = reminders::due(&store, 24, now + time::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again.count, 0);
}
