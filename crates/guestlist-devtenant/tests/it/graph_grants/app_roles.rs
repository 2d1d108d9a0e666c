//! App role assignments through users and service principals.

use guestlist_devtenant::defaults as d;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn app_role_assignments_through_users_and_service_principals() {
    let api = Api::new().await;
    let guest = api.guest("ren@contoso-partner.example").await;
    let other = api.guest("sam@contoso-partner.example").await;

    // The docs' request with devtenant's IDs: 201 with the docs' property names.
    let mut body = fixture("user-post-approleassignments.request.json");
    body["principalId"] = json!(guest);
    body["resourceId"] = json!(d::PORTAL_SP_ID);
    body["appRoleId"] = json!(d::PORTAL_ROLE_ID);
    let (st, h, a) = api
        .call_as(
            Method::POST,
            &format!("/users/{guest}/appRoleAssignments"),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(st, 201, "{a}");
    assert_valid("microsoft.graph.appRoleAssignment", &a);
    assert_valid("strict.microsoft.graph.appRoleAssignment", &a);
    assert_eq!(
        keys(&a),
        keys(&fixture("user-post-approleassignments.response.json"))
    );
    assert_eq!(a["principalId"], guest.as_str());
    assert_eq!(a["principalType"], "User");
    assert_eq!(
        a["principalDisplayName"],
        "Guest ren@contoso-partner.example"
    );
    assert_eq!(a["resourceId"], d::PORTAL_SP_ID);
    assert_eq!(a["resourceDisplayName"], d::PORTAL_SP_NAME);
    assert_eq!(a["appRoleId"], d::PORTAL_ROLE_ID);
    assert_eq!(a["id"].as_str().unwrap().len(), 43);
    assert!(h["location"].to_str().unwrap().ends_with(&format!(
        "/users/{guest}/appRoleAssignments/{}",
        a["id"].as_str().unwrap()
    )));

    // The same triple again, through either navigation: Graph's 400.
    let dup = "Permission being assigned already exists on the object.";
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/appRoleAssignments"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, 400);
    assert_error(&err, "Request_BadRequest", dup);
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, 400);
    assert_error(&err, "Request_BadRequest", dup);

    // appRoleAssignedTo, with the docs' request shape, for another user and for a group.
    let mut sp_body = fixture("serviceprincipal-post-approleassignedto.request.json");
    sp_body["principalId"] = json!(other);
    sp_body["resourceId"] = json!(d::PORTAL_SP_ID);
    sp_body["appRoleId"] = json!(d::PORTAL_ROLE_ID);
    let (st, a2) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            Some(sp_body),
        )
        .await;
    assert_eq!(st, 201, "{a2}");
    assert_eq!(
        keys(&a2),
        keys(&fixture(
            "serviceprincipal-post-approleassignedto.response.json"
        ))
    );
    let (st, a3) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            Some(json!({"principalId": d::PARTNERS_GROUP_ID, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID})),
        )
        .await;
    assert_eq!((st, a3["principalType"].clone()), (201, json!("Group")));

    // Lists.
    let (st, mine) = api
        .call(
            Method::GET,
            &format!("/users/{guest}/appRoleAssignments"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    assert_eq!(mine["value"][0]["id"], a["id"]);
    for item in mine["value"].as_array().unwrap() {
        assert_valid("strict.microsoft.graph.appRoleAssignment", item);
    }
    let (st, to) = api
        .call(
            Method::GET,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(to["value"].as_array().unwrap().len(), 3);
    assert_eq!(api.t.app_role_assignments().len(), 3);

    // Bad bodies and mismatches: 400; unknown objects: 404.
    let ok = |k: &str, v: Value| {
        let mut b = json!({"principalId": other, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID});
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v;
        }
        b
    };
    let nobody = "0f0f0f0f-0000-4000-8000-000000000000";
    for (path_user, b, status, message) in [
        (
            &other,
            ok("appRoleId", Value::Null),
            400,
            "A value is required for property 'appRoleId' of resource 'AppRoleAssignment'."
                .to_string(),
        ),
        (
            &other,
            ok("principalId", Value::Null),
            400,
            "A value is required for property 'principalId' of resource 'AppRoleAssignment'."
                .to_string(),
        ),
        (
            &other,
            ok("resourceId", Value::Null),
            400,
            "A value is required for property 'resourceId' of resource 'AppRoleAssignment'."
                .to_string(),
        ),
        (
            &other,
            ok("appRoleID", json!(d::PORTAL_ROLE_ID)),
            400,
            "Property 'appRoleID' does not exist as a declared property or extension property."
                .to_string(),
        ),
        (
            &other,
            ok("appRoleId", json!("Partner.Read")),
            400,
            "Invalid value specified for property 'appRoleId' of resource 'AppRoleAssignment'."
                .to_string(),
        ),
        (
            &other,
            ok("principalType", json!("User")),
            400,
            "Property 'principalType' is read-only and cannot be set.".to_string(),
        ),
        (
            &other,
            ok("principalId", json!(guest)),
            400,
            "Invalid value specified for property 'principalId' of resource 'AppRoleAssignment'."
                .to_string(),
        ),
        (
            &other,
            ok("appRoleId", json!(nobody)),
            400,
            format!(
                "Permission being assigned was not found on application '{}'.",
                d::PORTAL_APP_ID
            ),
        ),
        (
            &other,
            ok("resourceId", json!(nobody)),
            404,
            format!(
                "Resource '{nobody}' does not exist or one of its queried reference-property objects are not present."
            ),
        ),
    ] {
        let (st, err) = api
            .call(
                Method::POST,
                &format!("/users/{path_user}/appRoleAssignments"),
                Some(b.clone()),
            )
            .await;
        assert_eq!(st, status, "{b} → {err}");
        assert_error(
            &err,
            if status == 404 {
                "Request_ResourceNotFound"
            } else {
                "Request_BadRequest"
            },
            &message,
        );
    }
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/users/{nobody}/appRoleAssignments"),
            Some(ok("principalId", json!(nobody))),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = api
        .call(
            Method::GET,
            &format!("/servicePrincipals/{nobody}/appRoleAssignedTo"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    // A principal that does not exist, through the service principal.
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            Some(json!({"principalId": nobody, "resourceId": d::PORTAL_SP_ID, "appRoleId": d::PORTAL_ROLE_ID})),
        )
        .await;
    assert_eq!(
        (st, err["error"]["code"].clone()),
        (404, json!("Request_ResourceNotFound"))
    );
    // The service principal in the path must be the resource.
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/servicePrincipals/{}/appRoleAssignedTo", d::PORTAL_SP_ID),
            Some(
                json!({"principalId": other, "resourceId": nobody, "appRoleId": d::PORTAL_ROLE_ID}),
            ),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(api.t.app_role_assignments().len(), 3);
    api.t.shutdown().await;
}
