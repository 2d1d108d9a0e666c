//! The grants through `$batch`: `dependsOn`, per-item status, permissions and throttling.

use guestlist_devtenant::{DevTenantConfig, StartOptions, ThrottleConfig, defaults as d};
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn grants_through_batch_with_depends_on_and_throttling() {
    let api = Api::new().await;
    let guest = api.guest("noor@adatum.example").await;
    let g = d::PARTNERS_GROUP_ID;
    let ct = json!({"Content-Type": "application/json"});
    let batch = json!({"requests": [
        {"id": "member", "method": "POST", "url": format!("/groups/{g}/members/$ref"), "headers": ct,
         "body": dir_ref(&guest)},
        {"id": "role", "method": "POST", "url": format!("/users/{guest}/appRoleAssignments"), "headers": ct,
         "dependsOn": ["member"],
         "body": {"principalId": guest, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID}},
        {"id": "sponsor", "method": "POST", "url": format!("/users/{guest}/sponsors/$ref"), "headers": ct,
         "dependsOn": ["role"], "body": dir_ref(d::ADA_OID)},
        {"id": "again", "method": "POST", "url": format!("/groups/{g}/members/$ref"), "headers": ct,
         "dependsOn": ["sponsor"], "body": dir_ref(&guest)},
        {"id": "after-failure", "method": "POST", "url": format!("/users/{guest}/sponsors/$ref"), "headers": ct,
         "dependsOn": ["again"], "body": dir_ref(d::GRACE_OID)},
        {"id": "list", "method": "GET", "url": format!("/groups/{g}/members"), "dependsOn": ["member"]}
    ]});
    let (st, resp) = api.call(Method::POST, "/$batch", Some(batch)).await;
    assert_eq!(st, 200, "{resp}");
    assert_valid("x.batch.response", &resp);
    let by_id = |id: &str| {
        resp["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("member")["status"], 204);
    assert!(by_id("member").get("body").is_none());
    assert_eq!(by_id("role")["status"], 201);
    assert_valid(
        "strict.microsoft.graph.appRoleAssignment",
        &by_id("role")["body"],
    );
    assert_eq!(by_id("sponsor")["status"], 204);
    assert_eq!(by_id("again")["status"], 400);
    assert_eq!(
        by_id("again")["body"]["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    assert_eq!(by_id("after-failure")["status"], 424);
    assert_eq!(by_id("list")["status"], 200);
    assert_eq!(by_id("list")["body"]["value"][0]["id"], guest.as_str());
    assert_eq!(api.t.group_members(g).unwrap(), vec![guest.clone()]);
    assert_eq!(api.t.sponsors(&guest), vec![d::ADA_OID.to_string()]);
    assert_eq!(api.t.app_role_assignments().len(), 1);

    // Permissions are checked per item as for plain calls.
    let users_only = api
        .t
        .mint_user_token(
            d::ADA_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All",
        )
        .unwrap();
    let other = api.guest("ola@adatum.example").await;
    let (st, _, resp) = api
        .call_as(
            Method::POST,
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "POST", "url": format!("/groups/{g}/members/$ref"), "headers": ct, "body": dir_ref(&other)},
                {"id": "2", "method": "POST", "url": format!("/users/{other}/sponsors/$ref"), "headers": ct, "body": dir_ref(d::ADA_OID)}
            ]})),
            Some(&users_only),
        )
        .await;
    assert_eq!(st, 200);
    let statuses: Vec<u64> = resp["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![403, 204]);
    api.t.shutdown().await;

    // Grant writes draw on the same write bucket: each batch item is throttled on its own.
    let cfg = DevTenantConfig {
        throttle: ThrottleConfig {
            write_limit: 3,
            read_limit: None,
            window_secs: 3600,
        },
        ..DevTenantConfig::default()
    };
    let api = Api::start(cfg, StartOptions::default()).await;
    let guest = api.guest("ivy@adatum.example").await; // write 1 of 3
    let (st, _, resp) = api
        .call_as(
            Method::POST,
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "POST", "url": format!("/groups/{g}/members/$ref"), "headers": ct, "body": dir_ref(&guest)},
                {"id": "2", "method": "POST", "url": format!("/users/{guest}/sponsors/$ref"), "headers": ct, "body": dir_ref(d::ADA_OID)},
                {"id": "3", "method": "POST", "url": format!("/users/{guest}/appRoleAssignments"), "headers": ct,
                 "body": {"principalId": guest, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID}}
            ]})),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let r: Vec<Value> = resp["responses"].as_array().unwrap().clone();
    assert_eq!(
        r.iter()
            .map(|x| x["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![204, 204, 429]
    );
    assert!(
        r[2]["headers"]["Retry-After"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(r[2]["body"]["error"]["code"], "TooManyRequests");
    assert!(api.t.app_role_assignments().is_empty());
    api.t.shutdown().await;
}
