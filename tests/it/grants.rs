//! Grants on approval (issue 14 §1) across processes: the Graph client's grant calls against
//! devtenant over real HTTP ("already a member" is success, `$batch` above 20 items), then
//! sign-up → approve in the reviewer → devtenant's directory has the guest as a member of the
//! configured group, holding the app role, with the approver as sponsor; the same with a crash
//! between the account and its grants (one account, grants finished after restart); and a
//! refused grant as a visible partial state whose Retry runs only what is missing.

use std::sync::Arc;

use guestlist_core::model::Grant;
use guestlist_core::plan::grant_call;
use guestlist_core::policy::{AppRoleRef, GrantRule};
use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults};
use guestlist_graph::{Error, GraphClient, GraphConfig};
use guestlist_reviewer::{Faults, GrantFactKind, MemoryStore, OutboxState, Outcome, Reviewer};
use serde_json::{Value, json};

use crate::reviewer::{Env, facebook, id_of, server_config, sign_in};

const GRANT_SCOPES: &str = "https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/GroupMember.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All";

/// devtenant's recorded Graph calls (`GET /_devtenant/graph-calls`).
async fn recorded(base: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{base}/_devtenant/graph-calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

async fn forget_calls(base: &str) {
    let r = reqwest::Client::new()
        .delete(format!("{base}/_devtenant/graph-calls"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

fn guest(n: usize) -> Value {
    json!({
        "userPrincipalName": format!("grant{n}_fabrikam.com#EXT@contoso.onmicrosoft.com"),
        "accountEnabled": true,
        "mail": format!("grant{n}@fabrikam.com"),
        "userType": "Guest",
        "displayName": format!("Grant Guest {n}"),
        "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":format!("g-{n}")}]
    })
}

/// The three grants of the demo tenant: Partners-Fabrikam, the portal's role, and a sponsor.
fn demo_grants(sponsor: Grant) -> Vec<Grant> {
    vec![
        Grant::Group {
            group_id: defaults::PARTNERS_GROUP_ID.into(),
        },
        Grant::AppRole {
            resource_id: defaults::PORTAL_SP_ID.into(),
            app_role_id: defaults::PORTAL_ROLE_ID.into(),
        },
        sponsor,
    ]
}

#[tokio::test]
async fn graph_grants_are_idempotent_and_batched() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let token = t
        .mint_user_token(defaults::ADA_UPN, defaults::DESKTOP_CLIENT_ID, GRANT_SCOPES)
        .unwrap();
    let g = GraphClient::new(GraphConfig::new(t.graph_base())).unwrap();
    let uid = g.create_user(&token, &guest(0)).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One by one, twice each: the second time Graph answers "already exists", which is success.
    for _ in 0..2 {
        g.add_group_member(&token, defaults::PARTNERS_GROUP_ID, &uid)
            .await
            .unwrap();
        g.assign_app_role(
            &token,
            &uid,
            defaults::PORTAL_SP_ID,
            defaults::PORTAL_ROLE_ID,
        )
        .await
        .unwrap();
        g.add_sponsor(&token, &uid, defaults::ADA_OID)
            .await
            .unwrap();
    }
    // Graph itself refuses the repeat (what the client turns into success).
    let raw = g
        .call(
            &token,
            &grant_call(
                &Grant::Group {
                    group_id: defaults::PARTNERS_GROUP_ID.into(),
                },
                &uid,
                "",
            ),
        )
        .await
        .unwrap_err();
    let ge = raw.graph().unwrap();
    assert_eq!(ge.status, 400, "{ge:?}");
    assert!(guestlist_graph::is_already_granted(ge), "{ge:?}");
    assert_eq!(
        t.group_members(defaults::PARTNERS_GROUP_ID).unwrap(),
        vec![uid.clone()]
    );
    let mine = |t: &guestlist_devtenant::DevTenantHandle, u: &str| {
        t.app_role_assignments()
            .into_iter()
            .filter(|a| a["principalId"] == u)
            .collect::<Vec<_>>()
    };
    assert_eq!(mine(&t, &uid).len(), 1, "one assignment");
    assert_eq!(mine(&t, &uid)[0]["appRoleId"], defaults::PORTAL_ROLE_ID);
    assert_eq!(t.sponsors(&uid), vec![defaults::ADA_OID.to_owned()]);

    // Names for the plan on screen.
    assert_eq!(
        g.group_name(&token, defaults::PARTNERS_GROUP_ID)
            .await
            .unwrap(),
        defaults::PARTNERS_GROUP_NAME
    );
    // An unknown group is Graph's 404, not a panic or a success.
    let missing = "b0b0b0b0-0001-4000-8000-0000000fff99";
    let e = g.add_group_member(&token, missing, &uid).await.unwrap_err();
    assert!(matches!(&e, Error::Graph(ge) if ge.status == 404), "{e:?}");

    // $batch: 8 new guests × 3 grants = 24 calls (two batch requests), plus the first guest's
    // three again (already granted): every result is Ok.
    let mut calls = Vec::new();
    let mut ids = Vec::new();
    for n in 1..=8 {
        let id = g.create_user(&token, &guest(n)).await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for gr in demo_grants(Grant::ApproverSponsor) {
            calls.push(grant_call(&gr, &id, defaults::ADA_OID));
        }
        ids.push(id);
    }
    for gr in demo_grants(Grant::ApproverSponsor) {
        calls.push(grant_call(&gr, &uid, defaults::ADA_OID));
    }
    forget_calls(&t.base_url()).await;
    let results = g.grant_all(&token, &calls).await.unwrap();
    assert_eq!(results.len(), 27);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let batches = recorded(&t.base_url())
        .await
        .into_iter()
        .filter(|c| c["path"] == "/$batch")
        .count();
    assert_eq!(batches, 2, "27 items in batches of at most 20");
    let members = t.group_members(defaults::PARTNERS_GROUP_ID).unwrap();
    assert_eq!(members.len(), 9);
    for id in &ids {
        assert!(members.contains(id));
        assert_eq!(mine(&t, id).len(), 1);
        assert_eq!(t.sponsors(id), vec![defaults::ADA_OID.to_owned()]);
    }
    // A refused item is reported per item, the others still granted.
    let bad = vec![
        grant_call(
            &Grant::Group {
                group_id: missing.into(),
            },
            &ids[0],
            "",
        ),
        grant_call(
            &Grant::Group {
                group_id: defaults::PARTNERS_GROUP_ID.into(),
            },
            &ids[0],
            "",
        ),
    ];
    let r = g.grant_all(&token, &bad).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().status, 404);
    assert!(r[1].is_ok());
}

/// The server's policy for these tests: fabrikam.com sign-ups join Partners-Fabrikam, get the
/// portal's role, and have the approver as sponsor. `group` replaces the group id.
fn grant_policy(group: &str) -> Vec<GrantRule> {
    vec![GrantRule {
        name: "fabrikam partners".into(),
        email_domains: vec!["fabrikam.com".into()],
        groups: vec![group.into()],
        app_roles: vec![AppRoleRef {
            resource_id: defaults::PORTAL_SP_ID.into(),
            app_role_id: defaults::PORTAL_ROLE_ID.into(),
        }],
        sponsors: vec!["approver".into()],
        ..GrantRule::default()
    }]
}

async fn env_with_grants(group: &str) -> Env {
    let mut env = Env::start().await;
    env.stop_server().await;
    restart_with(&mut env, group).await;
    env
}

async fn restart_with(env: &mut Env, group: &str) {
    env.stop_server().await;
    let mut cfg = server_config(
        &env.tenant,
        &env.dir.path().join("server.db"),
        env.server_addr,
    );
    cfg.policy.grants = grant_policy(group);
    env.server = Some(guestlist_server::spawn(cfg).await.unwrap());
}

async fn reviewer(env: &Env, store: Arc<MemoryStore>, faults: Faults) -> Reviewer {
    let r = env.reviewer("ada", store, faults).await;
    let mut s = r.settings();
    s.graph_scopes = GRANT_SCOPES.split(' ').map(str::to_owned).collect();
    r.save_settings(s).await.unwrap();
    r
}

fn assert_granted(env: &Env, guest_id: &str) {
    let members = env
        .tenant
        .group_members(defaults::PARTNERS_GROUP_ID)
        .unwrap();
    assert_eq!(
        members.iter().filter(|m| *m == guest_id).count(),
        1,
        "member of Partners-Fabrikam"
    );
    let roles: Vec<Value> = env
        .tenant
        .app_role_assignments()
        .into_iter()
        .filter(|a| a["principalId"] == guest_id)
        .collect();
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert_eq!(roles[0]["resourceId"], defaults::PORTAL_SP_ID);
    assert_eq!(roles[0]["appRoleId"], defaults::PORTAL_ROLE_ID);
    assert_eq!(
        env.tenant.sponsors(guest_id),
        vec![defaults::ADA_OID.to_owned()],
        "the approver is the sponsor"
    );
}

#[tokio::test]
async fn approval_grants_group_app_role_and_the_approver_as_sponsor() {
    let env = env_with_grants(defaults::PARTNERS_GROUP_ID).await;
    env.request_approval(&facebook(40)).await;
    let r = reviewer(&env, Arc::new(MemoryStore::new()), Faults::default()).await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let id = id_of(&r, "fb40@fabrikam.com").await;

    // The request carries its grants from the server; the plan on screen names them.
    let d = r.detail(id.clone()).await.unwrap();
    assert_eq!(
        d.request.grants,
        demo_grants(Grant::ApproverSponsor),
        "served with the request"
    );
    let plan = d.plan.as_ref().unwrap();
    assert_eq!(plan.grants.len(), 3);
    assert_eq!(
        plan.grants[0].path,
        format!("/groups/{}/members/$ref", defaults::PARTNERS_GROUP_ID)
    );
    let facts = &d.if_approved_facts.grants;
    assert_eq!(facts[0].kind, GrantFactKind::Group);
    assert_eq!(
        facts[0].name.as_deref(),
        Some(defaults::PARTNERS_GROUP_NAME)
    );
    assert_eq!(facts[2].kind, GrantFactKind::Sponsor);
    assert!(facts[2].approver);
    assert_eq!(facts[2].id, defaults::ADA_OID);
    assert!(
        d.if_approved
            .contains(&format!("added to group {}", defaults::PARTNERS_GROUP_NAME)),
        "{}",
        d.if_approved
    );

    let out = r.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    let guest_id = out[0].directory_object_id.clone().unwrap();
    assert_granted(&env, &guest_id);
    assert_eq!(env.guests().len(), 1);
    // The group name is cached: the detail names it signed out too (no Graph call).
    r.sign_out(false).await.unwrap();
    let d = r.detail(id).await.unwrap();
    assert_eq!(
        d.if_approved_facts.grants[0].name.as_deref(),
        Some(defaults::PARTNERS_GROUP_NAME)
    );
}

#[tokio::test]
async fn a_crash_between_the_account_and_its_grants_finishes_them_after_restart() {
    let env = env_with_grants(defaults::PARTNERS_GROUP_ID).await;
    env.request_approval(&facebook(41)).await;
    let store = Arc::new(MemoryStore::new());
    let id = {
        let crashing = reviewer(
            &env,
            store.clone(),
            Faults {
                crash_after: Some(OutboxState::Provisioned),
                ..Faults::default()
            },
        )
        .await;
        sign_in(&crashing, defaults::ADA_UPN).await;
        crashing.sync().await.unwrap();
        let id = id_of(&crashing, "fb41@fabrikam.com").await;
        let out = crashing.approve(vec![id.clone()]).await.unwrap();
        assert_eq!(out[0].state, OutboxState::Provisioned, "{out:?}");
        id
    };
    assert_eq!(env.guests().len(), 1, "the account exists");
    let guest_id = env.guests()[0]["id"].as_str().unwrap().to_owned();
    assert!(
        env.tenant.sponsors(&guest_id).is_empty()
            && !env
                .tenant
                .group_members(defaults::PARTNERS_GROUP_ID)
                .unwrap()
                .contains(&guest_id),
        "no grant yet"
    );
    // Restart: the session comes back from the token store; the drain finishes the grants.
    let r = reviewer(&env, store, Faults::default()).await;
    let items = r.drain().await.unwrap();
    assert!(
        items.iter().all(|i| i.state == OutboxState::Reported),
        "{items:?}"
    );
    assert_eq!(items[0].grants_done, 3);
    assert_eq!(env.guests().len(), 1, "never a second account");
    assert_granted(&env, &guest_id);
    let out = r.approve(vec![id]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done);
}

#[tokio::test]
async fn a_refused_grant_is_a_partial_state_and_retry_runs_only_what_is_missing() {
    // The policy names a group the directory does not have: Graph answers 404 for it.
    let missing = "b0b0b0b0-0001-4000-8000-0000000fff99";
    let mut env = env_with_grants(missing).await;
    env.request_approval(&facebook(42)).await;
    let store = Arc::new(MemoryStore::new());
    let r = reviewer(&env, store.clone(), Faults::default()).await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let id = id_of(&r, "fb42@fabrikam.com").await;
    let out = r.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Failed, "{out:?}");
    let err = out[0].error.clone().unwrap();
    assert!(
        err.message
            .starts_with("Account created · 1 of 3 grants failed"),
        "{err:?}"
    );
    assert_eq!(err.graph.as_ref().unwrap().status, 404);
    let item = r
        .status()
        .await
        .outbox
        .into_iter()
        .find(|o| o.request_id == id)
        .unwrap();
    assert_eq!((item.grants_total, item.grants_done), (2 + 1, 2));
    let guest_id = item.directory_object_id.clone().unwrap();
    assert_eq!(
        env.tenant.sponsors(&guest_id),
        vec![defaults::ADA_OID.to_owned()]
    );
    // Still pending on the server: the approval is reported only once every grant is in.
    let cs = env.check_status(&facebook(42)).await;
    assert!(
        cs["code"]
            .as_str()
            .unwrap_or_default()
            .ends_with("APPROVAL-PENDING"),
        "{cs}"
    );

    // The admin fixes the policy; the approver opens the request again (the detail reads it
    // from the server with the grants it now carries, at the same version, and caches them)
    // and retries: only the group runs.
    restart_with(&mut env, defaults::PARTNERS_GROUP_ID).await;
    let d = r.detail(id.clone()).await.unwrap();
    assert_eq!(d.request.grants, demo_grants(Grant::ApproverSponsor));
    let o = d.outbox.as_ref().unwrap();
    assert_eq!(
        (o.state, o.grants_total, o.grants_done),
        (OutboxState::Failed, 3, 2)
    );
    forget_calls(&env.tenant.base_url()).await;
    let out = r.approve(vec![id]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    assert_eq!(
        out[0].directory_object_id.as_deref(),
        Some(guest_id.as_str())
    );
    assert_eq!(env.guests().len(), 1, "the account of the first attempt");
    assert_granted(&env, &guest_id);
    let batch_bodies: Vec<Value> = recorded(&env.tenant.base_url())
        .await
        .into_iter()
        .filter(|c| c["path"] == "/$batch")
        .map(|c| c["body"].clone())
        .collect();
    let items: Vec<&Value> = batch_bodies
        .iter()
        .flat_map(|b| b["requests"].as_array().unwrap().iter())
        .filter(|i| i["method"] == "POST")
        .collect();
    assert_eq!(items.len(), 1, "only the missing grant: {items:?}");
    assert!(items[0]["url"].as_str().unwrap().contains("/members/$ref"));
}

/// `[[policy.grants]]` as operators write it (README configuration table) loads, and a
/// non-GUID id stops the server from starting with a message naming the rule and the field.
#[test]
fn the_grants_config_loads_from_toml_and_refuses_bad_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    let base = "[connector]\nusername = \"c\"\npassword = \"p-long-enough-secret\"\n";
    let rule = |group: &str| {
        format!(
            "{base}[[policy.grants]]\nname = \"partners\"\nemail_domains = [\"fabrikam.com\"]\napplications = [\"{app}\"]\ngroups = [\"{group}\"]\napp_roles = [{{ resource_id = \"{sp}\", app_role_id = \"{role}\" }}]\nsponsors = [\"approver\", \"{ada}\"]\n",
            app = defaults::PORTAL_APP_ID,
            sp = defaults::PORTAL_SP_ID,
            role = defaults::PORTAL_ROLE_ID,
            ada = defaults::ADA_OID,
        )
    };
    std::fs::write(&file, rule(defaults::PARTNERS_GROUP_ID)).unwrap();
    let c = guestlist_server::config::Config::load(Some(&file)).unwrap();
    assert_eq!(c.policy.grants.len(), 1);
    assert_eq!(c.policy.grants[0].sponsors, ["approver", defaults::ADA_OID]);
    std::fs::write(&file, rule("Partners-Fabrikam")).unwrap();
    let e = guestlist_server::config::Config::load(Some(&file))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("policy.grants[0] (partners): groups must be a directory object id"),
        "{e}"
    );
}

/// The event stream carries each request's grants too (`GET /api/events`, replay).
#[tokio::test]
async fn events_carry_the_grants() {
    let env = env_with_grants(defaults::PARTNERS_GROUP_ID).await;
    env.request_approval(&facebook(43)).await;
    let token = env
        .tenant
        .mint_user_token(
            defaults::ADA_UPN,
            defaults::DESKTOP_CLIENT_ID,
            defaults::API_SCOPE_FULL,
        )
        .unwrap();
    let mut resp = reqwest::Client::new()
        .get(format!("{}/api/events", env.api()))
        .bearer_auth(&token)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let data = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let chunk = resp.chunk().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = text.lines().find(|l| l.starts_with("data: ")) {
                return line.trim_start_matches("data: ").to_owned();
            }
        }
    })
    .await
    .unwrap();
    let event: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(event["type"], "request.created");
    assert_eq!(
        event["request"]["grants"],
        json!([
            {"kind": "group", "groupId": defaults::PARTNERS_GROUP_ID},
            {"kind": "appRole", "resourceId": defaults::PORTAL_SP_ID, "appRoleId": defaults::PORTAL_ROLE_ID},
            {"kind": "approverSponsor"}
        ])
    );
}
