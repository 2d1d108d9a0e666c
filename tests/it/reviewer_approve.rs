//! Approving safely (issue 11), against devtenant + guestlist-server over real HTTP and real
//! SQLite files:
//!
//! - the undo window: a decision waits in the outbox before any Graph write; Undo cancels it
//!   (nothing written, the request pending again), also after a restart of the app; when the
//!   window ends the outbox worker sends it and tells subscribers (the window reloads);
//! - one truthful plan: for generated requests of every identity provider, with or without an
//!   existing account, throttled or not, the Graph calls devtenant records during approval
//!   equal the calls the detail view showed beforehand, call for call and body for body;
//! - a partial failure (the invitation made, the profile update refused) is recorded, and Retry
//!   resumes from there without a second invitation.

use std::sync::Arc;
use std::time::Duration;

use guestlist_core::model::ProvisionedBy;
use guestlist_core::plan::GraphCall;
use guestlist_devtenant::{FaultConfig, defaults};
use guestlist_reviewer::{
    Faults, MemoryStore, OpenOptions, OutboxState, Outcome, Reviewer, Settings, TokenStore,
};
use serde_json::{Value, json};

use crate::reviewer::{Env, facebook, id_of, sign_in};

async fn open(env: &Env, name: &str, store: Arc<dyn TokenStore>, undo: u32) -> Reviewer {
    Reviewer::open_with(
        &env.dir.path().join(name),
        Some(Settings {
            undo_seconds: undo,
            ..env.settings()
        }),
        OpenOptions {
            token_store: Some(store),
            faults: Faults::default(),
            outbox_worker: true,
        },
    )
    .await
    .unwrap()
}

/// devtenant's recorded Graph calls (`GET /_devtenant/graph-calls`).
async fn recorded(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_devtenant/graph-calls", env.tenant.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

async fn forget_calls(env: &Env) {
    let r = reqwest::Client::new()
        .delete(format!("{}/_devtenant/graph-calls", env.tenant.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

fn writes(calls: &[Value]) -> Vec<&Value> {
    calls.iter().filter(|c| c["method"] != "GET").collect()
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn undo_cancels_before_any_write_and_survives_a_restart() {
    let env = Env::start().await;
    for n in 1..=3 {
        env.request_approval(&facebook(n)).await;
    }
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let r = open(&env, "ada", store.clone(), 30).await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let fb1 = id_of(&r, "fb1@fabrikam.com").await;
    forget_calls(&env).await;

    // Approve: queued with an undo window, nothing sent anywhere.
    let out = r.approve(vec![fb1.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Queued, "{out:?}");
    assert!(out[0].undo_until.is_some(), "{out:?}");
    assert!(out[0].label.contains("fb1@fabrikam.com"), "{out:?}");
    let st = r.status().await;
    assert!(
        st.outbox
            .iter()
            .any(|o| o.request_id == fb1 && o.undo_until.is_some())
    );

    // A restart of the app: the window survives (persisted with the outbox row).
    drop(r);
    let r = open(&env, "ada", store.clone(), 30).await;
    let st = r.status().await;
    let item = st.outbox.iter().find(|o| o.request_id == fb1).unwrap();
    assert_eq!(item.state, OutboxState::Queued);
    assert!(item.undo_until.is_some(), "{item:?}");
    // A sync (which drains the outbox) does not send a decision in its window.
    r.sync().await.unwrap();
    assert!(
        recorded(&env).await.is_empty(),
        "no Graph call in the undo window"
    );

    // Undo: cancelled, nothing written, pending again.
    let undone = r.undo(vec![fb1.clone()]).await.unwrap();
    assert!(undone[0].undone, "{undone:?}");
    assert!(env.guests().is_empty(), "nothing was written");
    assert!(writes(&recorded(&env).await).is_empty());
    assert!(r.status().await.outbox.iter().all(|o| o.request_id != fb1));
    let q = r.queue(Default::default()).await.unwrap();
    let row = q.items.iter().find(|i| i.id == fb1).unwrap();
    assert_eq!(row.outbox_state, None, "pending again, with no decision");
    let h = r.history(fb1.clone()).await.unwrap();
    assert!(h.iter().all(|e| e.action != "approved"), "{h:?}");
    drop(r);

    // A short window: the worker sends it when the window ends, and tells subscribers.
    let r = open(&env, "ada", store.clone(), 1).await;
    let mut changes = r.subscribe_changes();
    let out = r.approve(vec![fb1.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Queued);
    assert!(env.guests().is_empty(), "not before the window ends");
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .expect("the drain notified the window")
        .unwrap();
    wait_until("the approval is reported", || async {
        r.status()
            .await
            .outbox
            .iter()
            .any(|o| o.request_id == fb1 && o.state == OutboxState::Reported)
    })
    .await;
    assert_eq!(env.guests().len(), 1, "exactly one guest");
    assert!(
        r.queue(Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|i| i.id != fb1),
        "the decided request left the queue"
    );
    // Too late to undo now.
    let late = r.undo(vec![fb1.clone()]).await.unwrap();
    assert!(!late[0].undone);
    assert_eq!(late[0].state, Some(OutboxState::Reported));
}

#[tokio::test]
async fn a_queued_decision_is_sent_as_soon_as_the_api_is_back() {
    let mut env = Env::start().await;
    env.request_approval(&facebook(7)).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let r = open(&env, "ada", store, 0).await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let id = id_of(&r, "fb7@fabrikam.com").await;
    env.stop_server().await;
    let out = r.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Queued, "{out:?}");
    assert!(!r.status().await.online);
    let mut changes = r.subscribe_changes();
    env.restart_server().await;
    // Any successful call brings the app online; the worker drains at once (no sync needed).
    let _ = r.history(id.clone()).await;
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .expect("the drain ran and notified")
        .unwrap();
    wait_until("the queued approval is reported", || async {
        r.status()
            .await
            .outbox
            .iter()
            .any(|o| o.request_id == id && o.state == OutboxState::Reported)
    })
    .await;
    assert_eq!(env.guests().len(), 1);
}

/// A tiny deterministic generator (xorshift), so that the cases are reproducible.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Existing {
    No,
    ByIdentity,
    ByMail,
}

/// The claims of a generated sign-up through `provider` (`facebook.com`, `google.com`, `mail`,
/// `entra`, `microsoftaccount`).
fn claims(n: usize, provider: &str, g: &mut Gen) -> Value {
    let email = match provider {
        "microsoftaccount" => format!(
            "p{n}@{}",
            g.pick(&["hotmail.com", "outlook.com", "live.com"])
        ),
        "entra" => format!("p{n}@{}", g.pick(&["fabrikam.com", "woodgrove.org"])),
        _ => format!(
            "p{n}@{}",
            g.pick(&["gmail.com", "proton.me", "fabrikam.com"])
        ),
    };
    let mut c = serde_json::Map::new();
    c.insert("email".into(), json!(email));
    if !matches!(provider, "entra" | "microsoftaccount") {
        let id = if provider == "mail" {
            email.clone()
        } else {
            format!("id-{n}-{}", g.next() % 100_000)
        };
        c.insert(
            "identities".into(),
            json!([{"signInType": "federated", "issuer": provider, "issuerAssignedId": id}]),
        );
    }
    if provider != "mail" || g.coin() {
        c.insert("displayName".into(), json!(format!("Person Ö{n}")));
        c.insert("givenName".into(), json!("Person"));
        c.insert("surname".into(), json!(format!("Ö{n}")));
    }
    for (k, v) in [
        ("city", "Malmö"),
        ("jobTitle", "Buyer"),
        ("companyName", "Fabrikam"),
        ("country", "Sweden"),
    ] {
        if g.coin() {
            c.insert(k.into(), json!(v));
        }
    }
    if g.coin() {
        c.insert(
            "extension_<extensions-app-id>_SponsorEmail".into(),
            json!("ada@contoso.com"),
        );
    }
    if g.coin() {
        c.insert("unknownClaim".into(), json!("x"));
    }
    Value::Object(c)
}

/// The shown calls (`lookups` then `writes`) as devtenant records them: `{id}` becomes the id
/// the invitation returned.
fn expected(shown: &[GraphCall], invited: Option<&str>) -> Vec<(String, String, Option<Value>)> {
    shown
        .iter()
        .map(|c| {
            let path = match invited {
                Some(id) => c.path.replace("{id}", id),
                None => c.path.clone(),
            };
            (c.method.clone(), path, c.body.clone())
        })
        .collect()
}

#[tokio::test]
async fn the_graph_calls_made_are_the_calls_shown() {
    let env = Env::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let r = open(&env, "ada", store, 0).await;
    sign_in(&r, defaults::ADA_UPN).await;
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let providers = [
        "facebook.com",
        "google.com",
        "mail",
        "entra",
        "microsoftaccount",
    ];
    let mut n = 0;
    let mut cases = 0;
    let mut throttled_answers = 0;
    for provider in providers {
        for existing in [Existing::No, Existing::ByIdentity, Existing::ByMail] {
            let federated = !matches!(provider, "entra" | "microsoftaccount");
            if existing == Existing::ByIdentity && !federated {
                continue; // without identities the only look-up is by mail
            }
            for throttled in [false, true] {
                n += 1;
                let c = claims(n, provider, &mut g);
                let email = c["email"].as_str().unwrap().to_owned();
                // An account that exists before the approval (as a self-service sign-up made it).
                let pre = match existing {
                    Existing::No => None,
                    Existing::ByIdentity => Some(c.clone()),
                    Existing::ByMail => {
                        let mut other = json!({"email": email, "displayName": "Someone"});
                        if federated {
                            other["identities"] = json!([{"signInType":"federated","issuer":"google.com","issuerAssignedId":format!("other-{n}")}]);
                        }
                        Some(other)
                    }
                };
                if let Some(pre) = pre {
                    let resp = reqwest::Client::new()
                        .post(format!("{}/_devtenant/signups", env.tenant.base_url()))
                        .json(&pre)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
                }
                env.request_approval(&c).await;
                r.sync().await.unwrap();
                let id = id_of(&r, &email).await;
                let d = r.detail(id.clone()).await.unwrap();
                assert!(d.directory.checked, "{:?}", d.directory.error);
                let plan = d.plan.clone().unwrap();
                let linked = existing != Existing::No;
                assert_eq!(
                    plan.kind == ProvisionedBy::ExistingAccount,
                    linked,
                    "{provider} {existing:?}: {plan:?}"
                );
                if linked {
                    assert!(plan.writes.is_empty());
                    assert!(
                        d.rows.iter().all(|row| row.will_be_written.is_none()),
                        "Will be written is empty"
                    );
                    assert!(
                        d.if_approved.contains("nothing is written"),
                        "{}",
                        d.if_approved
                    );
                } else {
                    assert!(
                        d.if_approved.ends_with("then approved on the server"),
                        "{}",
                        d.if_approved
                    );
                }
                let shown: Vec<GraphCall> = plan
                    .lookups
                    .iter()
                    .chain(plan.writes.iter())
                    .cloned()
                    .collect();

                forget_calls(&env).await;
                if throttled {
                    env.tenant
                        .set_faults(FaultConfig {
                            throttle_rate: 0.4,
                            seed: n as u64,
                            retry_after_secs: 0,
                            ..FaultConfig::default()
                        })
                        .unwrap();
                }
                let mut out = r.approve(vec![id.clone()]).await.unwrap();
                for _ in 0..30 {
                    if out[0].outcome != Outcome::Queued {
                        break;
                    }
                    r.drain().await.unwrap();
                    out = vec![
                        r.status()
                            .await
                            .outbox
                            .into_iter()
                            .find(|o| o.request_id == id)
                            .map(|o| guestlist_reviewer::DecisionOutcome {
                                id: o.request_id.clone(),
                                outcome: match o.state {
                                    OutboxState::Reported => Outcome::Done,
                                    OutboxState::Failed => Outcome::Failed,
                                    OutboxState::Conflict => Outcome::Conflict,
                                    _ => Outcome::Queued,
                                },
                                state: o.state,
                                directory_object_id: o.directory_object_id.clone(),
                                how: o.how,
                                error: o.last_error.clone(),
                                current: None,
                                label: o.label.clone(),
                                undo_until: None,
                                grants_failed: 0,
                            })
                            .unwrap(),
                    ];
                }
                env.tenant.set_faults(FaultConfig::default()).unwrap();
                assert_eq!(
                    out[0].outcome,
                    Outcome::Done,
                    "{provider} {existing:?} throttled={throttled}: {out:?}"
                );
                let how = out[0].how.unwrap();
                assert_eq!(how, plan.kind, "{provider} {existing:?}");

                // What devtenant received: successful calls; retried look-ups count once.
                let calls = recorded(&env).await;
                throttled_answers += calls.iter().filter(|c| c["status"] == 429).count();
                let ok: Vec<&Value> = calls
                    .iter()
                    .filter(|c| c["status"].as_u64().is_some_and(|s| s < 300))
                    .collect();
                let mut got: Vec<(String, String, Option<Value>)> = Vec::new();
                for c in ok {
                    let call = (
                        c["method"].as_str().unwrap().to_owned(),
                        c["path"].as_str().unwrap().to_owned(),
                        c.get("body").filter(|b| !b.is_null()).cloned(),
                    );
                    if call.0 == "GET" && got.contains(&call) {
                        continue;
                    }
                    got.push(call);
                }
                let invited = (how == ProvisionedBy::Invitation)
                    .then(|| out[0].directory_object_id.clone().unwrap());
                assert_eq!(
                    got,
                    expected(&shown, invited.as_deref()),
                    "{provider} {existing:?} throttled={throttled}: shown vs made"
                );
                // No write was ever sent twice (not even a refused one).
                let all_writes = writes(&calls)
                    .into_iter()
                    .filter(|c| c["status"].as_u64().is_some_and(|s| s < 300))
                    .count();
                assert_eq!(all_writes, plan.writes.len());
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 26);
    assert!(throttled_answers > 0, "some approvals were throttled");
}

#[tokio::test]
async fn a_partial_failure_is_recorded_and_retry_never_invites_twice() {
    let env = Env::start().await;
    env.request_approval(&crate::reviewer::fixture(
        "request-approval.request.azuread.json",
    ))
    .await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let r = open(&env, "shared", store.clone(), 0).await;
    // Grace holds no directory role: she may invite (a member), but not update users.
    sign_in(&r, defaults::GRACE_UPN).await;
    r.sync().await.unwrap();
    let id = id_of(&r, "johnsmith@fabrikam.onmicrosoft.com").await;
    forget_calls(&env).await;
    let out = r.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Failed, "{out:?}");
    assert_eq!(
        out[0].how,
        Some(ProvisionedBy::Invitation),
        "the invitation exists"
    );
    let invited = out[0]
        .directory_object_id
        .clone()
        .expect("the invited account is recorded");
    let err = out[0].error.as_ref().unwrap();
    assert_eq!(err.code, guestlist_core::Code::GraphError);
    let graph = err.graph.as_ref().expect("Graph's error details");
    assert_eq!(graph.code, "Authorization_RequestDenied");
    assert_eq!(
        err.request_id, graph.request_id,
        "the request id is a field"
    );
    // The detail shows the state, and does not blame "an existing account".
    let d = r.detail(id.clone()).await.unwrap();
    let o = d.outbox.as_ref().unwrap();
    assert!(o.write_started && o.directory_object_id.as_deref() == Some(invited.as_str()));
    assert!(
        !d.risks
            .iter()
            .any(|k| k.kind == guestlist_reviewer::RiskKind::ExistingAccount),
        "{:?}",
        d.risks
    );
    assert!(
        d.if_approved.starts_with("Resumes the earlier attempt"),
        "{}",
        d.if_approved
    );

    // Retry as an approver with the role: resumes with the PATCH, no second invitation.
    r.sign_out(false).await.unwrap();
    sign_in(&r, defaults::ADA_UPN).await;
    let out = r.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    assert_eq!(
        out[0].directory_object_id.as_deref(),
        Some(invited.as_str())
    );
    let calls = recorded(&env).await;
    let invitations = calls
        .iter()
        .filter(|c| c["method"] == "POST" && c["path"] == "/invitations")
        .count();
    assert_eq!(invitations, 1, "never invited twice");
    assert_eq!(env.guests().len(), 1);
    assert_eq!(env.tenant.user(&invited).unwrap()["city"], "Redmond");
}

#[tokio::test]
async fn the_approver_s_rights_are_known_before_approve() {
    let env = Env::start().await;
    let ada = open(&env, "ada", Arc::new(MemoryStore::new()), 0).await;
    sign_in(&ada, defaults::ADA_UPN).await;
    let r = ada.approver_rights().await.unwrap();
    assert_eq!(
        r.source, "token",
        "read from the wids claim devtenant emits"
    );
    assert!(r.can_create_users && r.can_update_users, "{r:?}");
    assert_eq!(r.roles, ["User Administrator"]);
    let grace = open(&env, "grace", Arc::new(MemoryStore::new()), 0).await;
    sign_in(&grace, defaults::GRACE_UPN).await;
    let r = grace.approver_rights().await.unwrap();
    assert!(
        !r.can_create_users && !r.can_update_users && r.can_invite,
        "{r:?}"
    );
    assert!(
        r.summary.contains("need User Administrator"),
        "{}",
        r.summary
    );
}
