//! The two-approver rule (issue 14 §3) across processes: devtenant + server + two reviewers.
//! A `[[policy.routes]]` rule with `approvals_required = 2`: the first approver's app records
//! "1 of 2" without any Graph call (the sign-up is still pending at check-status), cannot
//! approve a second time (`decision.second_approver_required`, nothing provisioned), and the
//! guest exists in devtenant's directory only after a second, distinct approver approves.

use std::sync::Arc;

use guestlist_core::Code;
use guestlist_core::policy::RouteRule;
use guestlist_devtenant::defaults;
use guestlist_reviewer::{Faults, MemoryStore, Outcome, Reviewer};
use serde_json::Value;

use crate::reviewer::{Env, facebook, id_of, server_config, sign_in};

/// fabrikam.com sign-ups go to the plain `Approver` role and need two approvals.
async fn env_with_two_approvers() -> Env {
    let mut env = Env::start().await;
    env.stop_server().await;
    let mut cfg = server_config(
        &env.tenant,
        &env.dir.path().join("server.db"),
        env.server_addr,
    );
    cfg.policy.routes = vec![RouteRule {
        name: "partners".into(),
        email_domains: vec!["fabrikam.com".into()],
        identity_providers: Vec::new(),
        applications: Vec::new(),
        role: "Approver".into(),
        fallback_role: None,
        escalate_after_hours: None,
        approvals_required: 2,
    }];
    env.server = Some(guestlist_server::spawn(cfg).await.unwrap());
    env
}

/// devtenant's recorded Graph writes (anything but `GET`).
async fn graph_writes(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_devtenant/graph-calls", env.tenant.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["method"] != "GET")
        .collect()
}

async fn signed_in(env: &Env, name: &str, upn: &'static str) -> Reviewer {
    let r = env
        .reviewer(name, Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&r, upn).await;
    r.sync().await.unwrap();
    r
}

#[tokio::test]
async fn the_guest_is_created_only_after_a_second_distinct_approval() {
    let env = env_with_two_approvers().await;
    let signup = facebook(60);
    env.request_approval(&signup).await;
    let grace = signed_in(&env, "grace", defaults::GRACE_UPN).await;
    let id = id_of(&grace, "fb60@fabrikam.com").await;
    let d = grace.detail(id.clone()).await.unwrap();
    assert_eq!(d.request.approvals_required, 2);

    // Grace's approval is the first of two: recorded, no Graph call at all (Grace holds no
    // directory role: a Graph write would have failed with 403).
    let out = grace.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    assert_eq!(out[0].directory_object_id, None);
    let current = out[0].current.as_ref().unwrap();
    assert_eq!(current.state.status().as_str(), "pending");
    assert_eq!(current.approvals.len(), 1);
    assert_eq!(current.approvals[0].by.id, defaults::GRACE_OID);
    assert!(graph_writes(&env).await.is_empty(), "no Graph write");
    assert!(env.guests().is_empty());
    let status = env.check_status(&signup).await;
    assert_eq!(status["code"], "GUESTLIST-APPROVAL-PENDING", "{status}");

    // Grace again: refused before any Graph call.
    grace.sync().await.unwrap();
    let again = grace.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(again[0].outcome, Outcome::Conflict, "{again:?}");
    assert_eq!(
        again[0].error.as_ref().unwrap().code,
        Code::DecisionSecondApproverRequired
    );
    assert!(graph_writes(&env).await.is_empty());
    assert!(env.guests().is_empty());

    // Ada, a second approver, sees "1 of 2" and provisions.
    let ada = signed_in(&env, "ada", defaults::ADA_UPN).await;
    let d = ada.detail(id.clone()).await.unwrap();
    assert_eq!(d.request.approvals.len(), 1, "shown to the other approvers");
    let out = ada.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    let guest_id = out[0].directory_object_id.clone().unwrap();
    let guests = env.guests();
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0]["id"], guest_id.as_str());
    let decided = out[0].current.as_ref().unwrap();
    assert_eq!(decided.state.status().as_str(), "approved");
    assert_eq!(decided.decided_by.as_ref().unwrap().id, defaults::ADA_OID);
}

#[tokio::test]
async fn a_denial_after_the_first_approval_ends_the_request() {
    let env = env_with_two_approvers().await;
    let signup = facebook(61);
    env.request_approval(&signup).await;
    let grace = signed_in(&env, "grace", defaults::GRACE_UPN).await;
    let id = id_of(&grace, "fb61@fabrikam.com").await;
    let out = grace.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    // The first approver changes her mind: her reported first approval does not stop a
    // denial from her own app.
    grace.sync().await.unwrap();
    let out = grace
        .deny(vec![id.clone()], "not a partner after all".into())
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    let status = env.check_status(&signup).await;
    assert_eq!(status["code"], "GUESTLIST-APPROVAL-DENIED", "{status}");
    assert!(env.guests().is_empty());
    assert!(graph_writes(&env).await.is_empty());
}
