//! Delegated and application permissions of the grant operations.

use guestlist_devtenant::defaults as d;
use reqwest::Method;
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn grant_permissions_are_checked_like_graph() {
    let api = Api::new().await;
    let guest = api.guest("lee@tailspin.example").await;
    let g = d::PARTNERS_GROUP_ID;
    let member = format!("/groups/{g}/members/$ref");
    let assign = format!("/users/{guest}/appRoleAssignments");
    let assigned_to = format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID);
    let sponsor = format!("/users/{guest}/sponsors/$ref");
    let role = json!({"principalId": guest, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID});
    let tok = |upn: &str, scopes: &str| {
        api.t
            .mint_user_token(upn, d::DESKTOP_CLIENT_ID, scopes)
            .unwrap()
    };

    // No token: 401.
    let (st, _, err) = api
        .call_as(Method::POST, &member, Some(dir_ref(&guest)), Some(""))
        .await;
    assert_eq!(st, 401);
    assert_eq!(err["error"]["code"], "InvalidAuthenticationToken");

    // Ada (User Administrator) with only User.ReadWrite.All: users yes, groups and roles no.
    let users_only = tok(d::ADA_UPN, "https://graph.microsoft.com/User.ReadWrite.All");
    for (path, body) in [(&member, dir_ref(&guest)), (&assign, role.clone())] {
        let (st, _, err) = api
            .call_as(Method::POST, path, Some(body), Some(&users_only))
            .await;
        assert_eq!(st, 403, "{path}");
        assert_error(
            &err,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let (st, _, _) = api
        .call_as(
            Method::POST,
            &sponsor,
            Some(dir_ref(d::ADA_OID)),
            Some(&users_only),
        )
        .await;
    assert_eq!(st, 204);
    // appRoleAssignedTo also needs to read the service principal (Application.Read.All).
    let assign_only = tok(
        d::ADA_UPN,
        "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All",
    );
    let (st, _, _) = api
        .call_as(
            Method::POST,
            &assigned_to,
            Some(role.clone()),
            Some(&assign_only),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = api
        .call_as(
            Method::POST,
            &assign,
            Some(role.clone()),
            Some(&assign_only),
        )
        .await;
    assert_eq!(st, 201);
    // Reads need a read permission: GroupMember.Read.All reads members, not assignments.
    let members_read = tok(
        d::GRACE_UPN,
        "https://graph.microsoft.com/GroupMember.Read.All",
    );
    let (st, _, _) = api
        .call_as(
            Method::GET,
            &format!("/groups/{g}/members"),
            None,
            Some(&members_read),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = api
        .call_as(Method::GET, &assign, None, Some(&members_read))
        .await;
    assert_eq!(st, 403);

    // Grace holds the scopes but no directory role: every write is 403, reads are fine.
    let grace = tok(d::GRACE_UPN, ALL_GRANT_SCOPES);
    for (path, body) in [
        (&member, dir_ref(&guest)),
        (&assign, role.clone()),
        (&assigned_to, role.clone()),
        (&sponsor, dir_ref(d::GRACE_OID)),
    ] {
        let (st, _, _) = api
            .call_as(Method::POST, path, Some(body), Some(&grace))
            .await;
        assert_eq!(st, 403, "{path}");
    }
    let (st, _, _) = api
        .call_as(
            Method::GET,
            &format!("/users/{guest}/sponsors"),
            None,
            Some(&grace),
        )
        .await;
    assert_eq!(st, 200);

    // An application token needs the application permissions (roles), no directory role.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let app = |roles: &[&str]| {
        api.t
            .mint_token(&json!({"iss": api.t.issuer(), "aud": d::GRAPH_RESOURCE, "exp": now + 600,
                "nbf": now - 5, "iat": now - 5, "azp": "app-1", "tid": d::TENANT_ID, "roles": roles}))
            .unwrap()
    };
    let (st, _, _) = api
        .call_as(
            Method::POST,
            &member,
            Some(dir_ref(&guest)),
            Some(&app(&["User.ReadWrite.All"])),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = api
        .call_as(
            Method::POST,
            &member,
            Some(dir_ref(&guest)),
            Some(&app(&["GroupMember.ReadWrite.All"])),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(api.t.group_members(g).unwrap(), vec![guest.clone()]);
    api.t.shutdown().await;
}
