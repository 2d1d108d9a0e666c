//! Issue 14 §4 over real HTTP on 127.0.0.1 with a real SQLite file: an auto-deny rule refuses a
//! sign-up already at check-approval-status (right after the identity provider sign-in, before
//! the attribute page) with the seed's `…-APPROVAL-AUTO-DENIED` block page, by e-mail domain
//! (canonical form) or by identity provider; others continue, and a stored request keeps its
//! own answer.

use guestlist_core::policy::{Policy, Rule};
use guestlist_server::config::{ConnectorAuth, Secret};
use guestlist_server::{Config, RunningServer};
use serde_json::{Value, json};

use crate::common::{self, PASS, USER, connector_fixture as fixture};

async fn start(policy: Policy, db: &std::path::Path) -> RunningServer {
    common::spawn(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: common::database(db),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        admin_listen: Some(guestlist_server::edge::AdminListen::Off),
        policy,
        ..Config::default()
    })
    .await
}

async fn check_status(base: &str, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/connectors/check-approval-status"))
        .basic_auth(USER, Some(PASS))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn auto_denied() -> Value {
    let mut v = fixture("response.block.auto-denied.json");
    v["code"] = json!("GUESTLIST-APPROVAL-AUTO-DENIED");
    v
}

fn rule(name: &str, domains: &[&str], providers: &[&str]) -> Rule {
    Rule {
        name: name.into(),
        email_domains: domains.iter().map(|d| d.to_string()).collect(),
        identity_providers: providers.iter().map(|p| p.to_string()).collect(),
    }
}

#[tokio::test]
async fn a_blocked_domain_or_provider_is_refused_at_check_status() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_deny: vec![
            rule("no-fabrikam", &["Fabrikam.onmicrosoft.com"], &[]),
            rule("no-twitter", &[], &["twitter.com"]),
        ],
        ..Policy::default()
    };
    let s = start(policy, &dir.path().join("g.db")).await;
    let base = s.base_url();
    let fb = fixture("check-status.request.facebook.json");
    assert_eq!(check_status(&base, &fb).await, auto_denied());
    // The canonical domain: a fullwidth spelling is the same domain.
    let mut wide = fb.clone();
    wide["email"] = json!("john@ｆａｂｒｉｋａｍ.onmicrosoft.com");
    assert_eq!(check_status(&base, &wide).await, auto_denied());
    // By identity provider, and localised as the other block pages.
    let mut tw = fb.clone();
    tw["email"] = json!("kim@example.org");
    tw["identities"][0]["issuer"] = json!("twitter.com");
    tw["ui_locales"] = json!("fr-FR");
    let fr = check_status(&base, &tw).await;
    assert_eq!(fr["code"], "GUESTLIST-APPROVAL-AUTO-DENIED");
    assert!(
        fr["userMessage"]
            .as_str()
            .unwrap()
            .starts_with("Votre demande"),
        "{fr}"
    );
    // Everyone else goes on to the attribute page.
    let mut ok = fb.clone();
    ok["email"] = json!("kim@example.org");
    assert_eq!(
        check_status(&base, &ok).await,
        fixture("response.continue.json")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_stored_request_keeps_its_answer_when_a_rule_is_added_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let s = start(Policy::default(), &db).await;
    let r = reqwest::Client::new()
        .post(format!("{}/connectors/request-approval", s.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(&fixture("request-approval.request.facebook.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
    let policy = Policy {
        auto_deny: vec![rule("no-fabrikam", &["fabrikam.onmicrosoft.com"], &[])],
        ..Policy::default()
    };
    let s = start(policy, &db).await;
    let mut pending = fixture("response.block.pending.json");
    pending["code"] = json!("GUESTLIST-APPROVAL-PENDING");
    assert_eq!(
        check_status(
            &s.base_url(),
            &fixture("check-status.request.facebook.json")
        )
        .await,
        pending
    );
    s.shutdown().await;
}
