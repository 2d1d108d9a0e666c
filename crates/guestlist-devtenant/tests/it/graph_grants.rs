//! devtenant's grant operations (issue 14 §1) driven over real HTTP on 127.0.0.1: group members
//! (`POST /groups/{id}/members/$ref`), app role assignments (`POST /users/{id}/appRoleAssignments`,
//! `POST /servicePrincipals/{id}/appRoleAssignedTo`) and sponsors (`POST /users/{id}/sponsors/$ref`),
//! their lists, duplicates, 404s, bodies rejected by `schemas/graph-subset.json`, delegated and
//! application permissions, `$batch` (with `dependsOn` and per-item throttling) and the state
//! file. Every answer is validated against the schema read from disk here, and the docs'
//! examples in `tests/fixtures/grants/` are checked against the schema and replayed.
//!
//! One binary; the helpers are in `support`, the topics in the child modules.

mod app_roles;
mod batch;
mod members;
mod permissions;
mod sponsors;
mod state;
mod support;

use guestlist_devtenant::defaults as d;
use serde_json::json;
use support::{GRAPH, assert_valid, doc, fixture, violations};

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
