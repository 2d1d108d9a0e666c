//! devtenant's grant operations (issue 14 §1) driven over real HTTP on 127.0.0.1: group members
//! (`POST /groups/{id}/members/$ref`), app role assignments (`POST /users/{id}/appRoleAssignments`,
//! `POST /servicePrincipals/{id}/appRoleAssignedTo`) and sponsors (`POST /users/{id}/sponsors/$ref`),
//! their lists, duplicates, 404s, bodies rejected by `schemas/graph-subset.json`, delegated and
//! application permissions, `$batch` (with `dependsOn` and per-item throttling) and the state
//! file. Every answer is validated against the schema read from disk here, and the docs'
//! examples in `tests/fixtures/grants/` are checked against the schema and replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::OnceLock;

use guestlist_devtenant::{
    DevTenant, DevTenantConfig, DevTenantHandle, StartOptions, ThrottleConfig, defaults as d,
};
use reqwest::Method;
use serde_json::{Value, json};

const GRAPH: &str = "https://graph.microsoft.com";
/// Every Graph permission the grants need, as one delegated scope string.
const ALL_GRANT_SCOPES: &str = "https://graph.microsoft.com/GroupMember.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/Application.Read.All";

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/graph-subset.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn violations(name: &str, body: &Value) -> Vec<String> {
    let mut root = doc().clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap();
    v.iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn assert_valid(name: &str, body: &Value) {
    let errors = violations(name, body);
    assert!(errors.is_empty(), "{name}: {errors:?}\nbody: {body}");
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/grants/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn dir_ref(id: &str) -> Value {
    json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/{id}")})
}

struct Api {
    t: DevTenantHandle,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn start(cfg: DevTenantConfig, opts: StartOptions) -> Self {
        let t = DevTenant::start_with(cfg, opts).await.unwrap();
        let token = t
            .mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, ALL_GRANT_SCOPES)
            .unwrap();
        Self {
            t,
            http: reqwest::Client::new(),
            token,
        }
    }
    async fn new() -> Self {
        Self::start(DevTenantConfig::default(), StartOptions::default()).await
    }
    /// One Graph call with `token` (the default token when `None`): status, headers, JSON body
    /// (`Null` when empty). Error bodies must be ODataErrors.
    async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.t.graph_base()))
            .bearer_auth(token.unwrap_or(&self.token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        if status >= 400 {
            assert_valid("microsoft.graph.ODataErrors.ODataError", &body);
        }
        (status, headers, body)
    }
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (st, _, b) = self.call_as(method, path, body, None).await;
        (st, b)
    }
    /// Creates a guest through `POST /users` and returns its object ID.
    async fn guest(&self, email: &str) -> String {
        let nick = email.replace(['@', '.'], "_");
        let (st, u) = self
            .call(
                Method::POST,
                "/users",
                Some(json!({
                    "accountEnabled": true,
                    "displayName": format!("Guest {email}"),
                    "userPrincipalName": format!("{nick}#EXT#@{}", d::TENANT_DOMAIN),
                    "mail": email,
                    "userType": "Guest",
                    "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]
                })),
            )
            .await;
        assert_eq!(st, 201, "{u}");
        u["id"].as_str().unwrap().to_string()
    }
}

fn assert_error(body: &Value, code: &str, message: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
}

#[test]
fn docs_examples_match_the_schema() {
    // Requests: the strict variants the paths name as x-strict-requestBody.
    let paths = &doc()["paths"];
    for (path, op, file) in [
        (
            "/groups/{group-id}/members/$ref",
            "post",
            "group-post-members.request.json",
        ),
        (
            "/users/{user-id}/sponsors/$ref",
            "post",
            "user-post-sponsors.request.json",
        ),
        (
            "/users/{user-id}/appRoleAssignments",
            "post",
            "user-post-approleassignments.request.json",
        ),
        (
            "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo",
            "post",
            "serviceprincipal-post-approleassignedto.request.json",
        ),
    ] {
        let strict = paths[path][op]["x-strict-requestBody"]["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/");
        assert_valid(strict, &fixture(file));
        let loose = paths[path][op]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/");
        assert_valid(loose, &fixture(file));
    }
    for file in [
        "user-post-approleassignments.response.json",
        "serviceprincipal-post-approleassignedto.response.json",
    ] {
        assert_valid("microsoft.graph.appRoleAssignment", &fixture(file));
        assert_valid("strict.microsoft.graph.appRoleAssignment", &fixture(file));
    }
    for file in [
        "group-list-members.response.json",
        "user-list-sponsors.response.json",
    ] {
        for item in fixture(file)["value"].as_array().unwrap() {
            assert_valid("microsoft.graph.directoryObject", item);
            assert_valid("strict.microsoft.graph.user", item);
        }
    }
    assert_valid(
        "microsoft.graph.ODataErrors.ODataError",
        &fixture("error.members-already-exist.json"),
    );
    // The strict schemas reject what Graph rejects: typos, missing or malformed references.
    for bad in [
        json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/{}", d::ADA_OID), "extra": 1}),
        json!({}),
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/not-a-guid"}),
        json!({"@odata.id": format!("{GRAPH}/beta/directoryObjects/{}", d::ADA_OID)}),
        json!({"@odata.id": 42}),
    ] {
        assert!(
            !violations("strict.ReferenceCreate", &bad).is_empty(),
            "accepted {bad}"
        );
    }
    for bad in [
        json!({"principalId": d::ADA_OID, "resourceId": d::PORTAL_SP_ID, "appRoleId": "not-a-guid"}),
        json!({"principalId": d::ADA_OID, "resourceId": d::PORTAL_SP_ID, "appRoleID": d::PORTAL_ROLE_ID}),
    ] {
        assert!(
            !violations("strict.microsoft.graph.appRoleAssignment", &bad).is_empty(),
            "accepted {bad}"
        );
    }
    // Provenance is named in the file.
    let src = &doc()["info"]["x-source"]["grants"];
    assert_eq!(src["repository"], "microsoftgraph/msgraph-metadata");
    assert_eq!(src["commit"].as_str().unwrap().len(), 40);
}

#[tokio::test]
async fn group_members_add_list_duplicates_404s_and_bad_bodies() {
    let api = Api::new().await;
    let g = d::PARTNERS_GROUP_ID;
    let guest = api.guest("ada.partner@fabrikam.example").await;

    let (st, group) = api.call(Method::GET, &format!("/groups/{g}"), None).await;
    assert_eq!(st, 200, "{group}");
    assert_valid("strict.microsoft.graph.group", &group);
    assert_valid("microsoft.graph.group", &group);
    assert_eq!(group["displayName"], d::PARTNERS_GROUP_NAME);

    let (st, list) = api
        .call(Method::GET, &format!("/groups/{g}/members"), None)
        .await;
    assert_eq!((st, list["value"].as_array().unwrap().len()), (200, 0));

    // The docs' request, with our member's ID: 204 and no body.
    let mut body = fixture("group-post-members.request.json");
    body["@odata.id"] = json!(format!("{GRAPH}/v1.0/directoryObjects/{guest}"));
    let (st, h, resp) = api
        .call_as(
            Method::POST,
            &format!("/groups/{g}/members/$ref"),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!((st, resp), (204, Value::Null));
    assert!(h.contains_key("request-id"));
    assert_eq!(api.t.group_members(g).unwrap(), vec![guest.clone()]);

    // Listed as the docs list members: a user with its @odata.type and default properties.
    let (st, list) = api
        .call(Method::GET, &format!("/groups/{g}/members"), None)
        .await;
    assert_eq!(st, 200);
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], guest.as_str());
    assert_eq!(items[0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(
        keys(&items[0]),
        keys(&fixture("group-list-members.response.json")["value"][0])
    );
    assert_valid("microsoft.graph.directoryObject", &items[0]);
    assert_valid("strict.microsoft.graph.user", &items[0]);
    assert_eq!(
        list["@odata.context"],
        format!("{}/$metadata#directoryObjects", api.t.graph_base())
    );

    // Already a member: Graph's exact 400 (also via the users/{id} form of the reference).
    let expected = fixture("error.members-already-exist.json");
    for again in [
        body.clone(),
        json!({"@odata.id": format!("{GRAPH}/v1.0/users/{guest}")}),
    ] {
        let (st, err) = api
            .call(
                Method::POST,
                &format!("/groups/{g}/members/$ref"),
                Some(again),
            )
            .await;
        assert_eq!(st, 400);
        assert_error(
            &err,
            expected["error"]["code"].as_str().unwrap(),
            expected["error"]["message"].as_str().unwrap(),
        );
    }
    assert_eq!(api.t.group_members(g).unwrap().len(), 1);

    // A service principal and another group can be members too.
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/groups/{g}/members/$ref"),
            Some(dir_ref(d::PORTAL_SP_ID)),
        )
        .await;
    assert_eq!(st, 204);

    // 404s: unknown group, unknown member (a well-formed GUID that names nothing), a reference
    // of the wrong entity set.
    let nobody = "0f0f0f0f-0000-4000-8000-000000000000";
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/groups/{nobody}/members/$ref"),
            Some(dir_ref(&guest)),
        )
        .await;
    assert_eq!(st, 404);
    assert_error(
        &err,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{nobody}' does not exist or one of its queried reference-property objects are not present."
        ),
    );
    for (path, body) in [
        (format!("/groups/{g}/members/$ref"), dir_ref(nobody)),
        (
            format!("/groups/{g}/members/$ref"),
            json!({"@odata.id": format!("{GRAPH}/v1.0/groups/{guest}")}),
        ),
    ] {
        let (st, err) = api.call(Method::POST, &path, Some(body)).await;
        assert_eq!(st, 404, "{err}");
        assert_eq!(err["error"]["code"], "Request_ResourceNotFound");
    }
    for path in [
        format!("/groups/{nobody}"),
        format!("/groups/{nobody}/members"),
    ] {
        let (st, err) = api.call(Method::GET, &path, None).await;
        assert_eq!(st, 404);
        assert_eq!(err["error"]["code"], "Request_ResourceNotFound");
    }

    // Invalid references and bodies: 400 naming the problem; nothing is added.
    for (bad, message) in [
        (
            json!({"@odata.id": "not-a-url"}),
            "Invalid object identifier 'not-a-url'.".to_string(),
        ),
        (
            json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/not-a-guid")}),
            format!("Invalid object identifier '{GRAPH}/v1.0/directoryObjects/not-a-guid'."),
        ),
        (
            json!({"@odata.id": format!("https://evil.example/v1.0/directoryObjects/{guest}")}),
            format!(
                "Invalid object identifier 'https://evil.example/v1.0/directoryObjects/{guest}'."
            ),
        ),
        (
            json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/{guest}"), "members": []}),
            "Property 'members' does not exist as a declared property or extension property."
                .to_string(),
        ),
        (
            json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/{guest}"), "id": guest}),
            "Property 'id' does not exist as a declared property or extension property."
                .to_string(),
        ),
        (
            json!({}),
            "A value is required for property '@odata.id' of resource 'ReferenceCreate'."
                .to_string(),
        ),
        (
            json!({"@odata.id": 7}),
            "Invalid value specified for property '@odata.id' of resource 'ReferenceCreate'."
                .to_string(),
        ),
    ] {
        let (st, err) = api
            .call(
                Method::POST,
                &format!("/groups/{g}/members/$ref"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, 400, "{bad} → {err}");
        assert_error(&err, "Request_BadRequest", &message);
    }
    // A group cannot contain itself.
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/groups/{g}/members/$ref"),
            Some(dir_ref(g)),
        )
        .await;
    assert_eq!(st, 400);
    // A body that is not JSON at all.
    let r = api
        .http
        .post(format!("{}/groups/{g}/members/$ref", api.t.graph_base()))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Other methods on these resources are 405.
    let (st, _) = api
        .call(Method::DELETE, &format!("/groups/{g}/members"), None)
        .await;
    assert_eq!(st, 405);
    assert_eq!(
        api.t.group_members(g).unwrap(),
        vec![guest.clone(), d::PORTAL_SP_ID.to_string()]
    );
    api.t.shutdown().await;
}

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

#[tokio::test]
async fn sponsors_add_list_and_duplicates() {
    let api = Api::new().await;
    let guest = api.guest("kim@northwind.example").await;

    // The docs' example 1 (a user, users/{id} form) with Ada as the sponsor; then a group.
    let mut body = fixture("user-post-sponsors.request.json");
    body["@odata.id"] = json!(format!("{GRAPH}/v1.0/users/{}", d::ADA_OID));
    let (st, resp) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/sponsors/$ref"),
            Some(body.clone()),
        )
        .await;
    assert_eq!((st, resp), (204, Value::Null));
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/sponsors/$ref"),
            Some(json!({"@odata.id": format!("{GRAPH}/v1.0/groups/{}", d::PARTNERS_GROUP_ID)})),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(
        api.t.sponsors(&guest),
        vec![d::ADA_OID.to_string(), d::PARTNERS_GROUP_ID.to_string()]
    );

    // Twice the same sponsor (also by UPN in the path, and the directoryObjects form): 400.
    for (path_user, b) in [
        (guest.clone(), body.clone()),
        (guest.clone(), dir_ref(d::ADA_OID)),
    ] {
        let (st, err) = api
            .call(
                Method::POST,
                &format!("/users/{path_user}/sponsors/$ref"),
                Some(b),
            )
            .await;
        assert_eq!(st, 400);
        assert_error(
            &err,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'sponsors'.",
        );
    }

    let (st, list) = api
        .call(Method::GET, &format!("/users/{guest}/sponsors"), None)
        .await;
    assert_eq!(st, 200);
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(items[0]["id"], d::ADA_OID);
    assert_eq!(
        keys(&items[0]),
        keys(&fixture("user-list-sponsors.response.json")["value"][0])
    );
    assert_valid("strict.microsoft.graph.user", &items[0]);
    assert_eq!(items[1]["@odata.type"], "#microsoft.graph.group");
    assert_valid("strict.microsoft.graph.group", &items[1]);

    // A service principal cannot sponsor; unknown user or sponsor: 404.
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/sponsors/$ref"),
            Some(dir_ref(d::PORTAL_SP_ID)),
        )
        .await;
    assert_eq!(st, 400);
    let nobody = "0f0f0f0f-0000-4000-8000-000000000000";
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/users/{nobody}/sponsors/$ref"),
            Some(dir_ref(d::ADA_OID)),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/sponsors/$ref"),
            Some(dir_ref(nobody)),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = api
        .call(Method::GET, &format!("/users/{nobody}/sponsors"), None)
        .await;
    assert_eq!(st, 404);
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/users/{guest}/sponsors/$ref"),
            Some(json!({"@odata.id": format!("{GRAPH}/v1.0/users/{}", d::ADA_UPN)})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(err["error"]["code"], "Request_BadRequest");
    assert_eq!(api.t.sponsors(&guest).len(), 2);
    api.t.shutdown().await;
}

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
