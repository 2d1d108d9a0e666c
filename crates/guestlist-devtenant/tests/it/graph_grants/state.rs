//! The state file, the admin API and the config of groups and service principals.

use guestlist_devtenant::{DevTenantConfig, StartOptions, defaults as d};
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn grants_survive_a_restart_and_show_in_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StartOptions {
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let api = Api::start(DevTenantConfig::default(), opts.clone()).await;
    let guest = api.guest("mo@litware.example").await;
    let g = d::PARTNERS_GROUP_ID;
    for (path, body) in [
        (format!("/groups/{g}/members/$ref"), dir_ref(&guest)),
        (format!("/users/{guest}/sponsors/$ref"), dir_ref(d::ADA_OID)),
        (
            format!("/users/{guest}/appRoleAssignments"),
            json!({"principalId": guest, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID}),
        ),
    ] {
        let (st, b) = api.call(Method::POST, &path, Some(body)).await;
        assert!(st == 204 || st == 201, "{path}: {st} {b}");
    }
    let before = api.t.app_role_assignments();
    api.t.shutdown().await;

    let api = Api::start(DevTenantConfig::default(), opts).await;
    assert_eq!(api.t.group_members(g).unwrap(), vec![guest.clone()]);
    assert_eq!(api.t.sponsors(&guest), vec![d::ADA_OID.to_string()]);
    assert_eq!(api.t.app_role_assignments(), before);
    // Still duplicates after the restart.
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/groups/{g}/members/$ref"),
            Some(dir_ref(&guest)),
        )
        .await;
    assert_eq!(st, 400);

    // The admin API (what cross-process tests read).
    let get = |p: &str| {
        let url = format!("{}/_devtenant/{p}", api.t.base_url());
        let http = api.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let groups = get("groups").await;
    let partners = groups["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == g)
        .unwrap()
        .clone();
    assert_eq!(partners["members"], json!([guest]));
    let assignments = get("app-role-assignments").await;
    assert_eq!(assignments["value"], json!(before));
    let sponsors = get("sponsors").await;
    assert_eq!(
        sponsors["value"],
        json!([{"userId": guest, "sponsors": [d::ADA_OID]}])
    );

    // Deleting the guest removes its membership, assignment and sponsor list too.
    let (st, _) = api
        .call(Method::DELETE, &format!("/users/{guest}"), None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(api.t.group_members(g).unwrap(), Vec::<String>::new());
    assert!(api.t.app_role_assignments().is_empty());
    assert!(api.t.sponsors(&guest).is_empty());
    api.t.shutdown().await;
}

#[tokio::test]
async fn groups_and_service_principals_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devtenant.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[groups]]
object_id = "11111111-1111-4111-8111-111111111111"
display_name = "Vendors"
members = ["{ada}"]

[[service_principals]]
object_id = "22222222-2222-4222-8222-222222222222"
app_id = "33333333-3333-4333-8333-333333333333"
display_name = "Vendor portal"
[[service_principals.app_roles]]
id = "44444444-4444-4444-8444-444444444444"
value = "Vendor.Read"
display_name = "Vendor reader"
[[service_principals.app_roles]]
id = "55555555-5555-4555-8555-555555555555"
value = "Vendor.Daemon"
display_name = "Daemon"
allowed_member_types = ["Application"]
"#,
            ada = d::ADA_OID
        ),
    )
    .unwrap();
    let cfg = DevTenantConfig::from_file(&file).unwrap();
    let api = Api::start(cfg, StartOptions::default()).await;
    assert_eq!(
        api.t.group_members("11111111-1111-4111-8111-111111111111"),
        Some(vec![d::ADA_OID.to_string()])
    );
    assert!(api.t.group_members(d::PARTNERS_GROUP_ID).is_none());
    let (st, g) = api
        .call(
            Method::GET,
            "/groups/11111111-1111-4111-8111-111111111111",
            None,
        )
        .await;
    assert_eq!((st, g["displayName"].clone()), (200, json!("Vendors")));
    assert_eq!(g["mailNickname"], "Vendors");
    assert_eq!(g["securityEnabled"], true);
    let sp = "22222222-2222-4222-8222-222222222222";
    let assign =
        |role: &str| json!({"principalId": d::GRACE_OID, "resourceId": sp, "appRoleId": role});
    let (st, a) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{sp}/appRoleAssignedTo"),
            Some(assign("44444444-4444-4444-8444-444444444444")),
        )
        .await;
    assert_eq!(
        (st, a["resourceDisplayName"].clone()),
        (201, json!("Vendor portal"))
    );
    // An Application-only role cannot go to a user.
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{sp}/appRoleAssignedTo"),
            Some(assign("55555555-5555-4555-8555-555555555555")),
        )
        .await;
    assert_eq!(st, 400);
    assert_error(
        &err,
        "Request_BadRequest",
        "Permission being assigned was not found on application '33333333-3333-4333-8333-333333333333'.",
    );
    api.t.shutdown().await;

    // A member that names no configured object, or a duplicate object ID, is a config error.
    for bad in [
        r#"[[groups]]
object_id = "11111111-1111-4111-8111-111111111111"
display_name = "G"
members = ["99999999-9999-4999-8999-999999999999"]"#,
        r#"[[groups]]
object_id = "a0a0a0a0-0001-4000-8000-00000000ada1"
display_name = "Same as Ada""#,
        r#"[[service_principals]]
object_id = "22222222-2222-4222-8222-222222222222"
app_id = "not-a-guid"
display_name = "X""#,
    ] {
        std::fs::write(&file, bad).unwrap();
        let e = DevTenantConfig::from_file(&file).unwrap_err();
        assert!(
            e.to_string().contains("group") || e.to_string().contains("service principal"),
            "{e}"
        );
    }
}
