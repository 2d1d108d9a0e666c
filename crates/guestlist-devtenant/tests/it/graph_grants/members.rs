//! Group members: "Get group", "List group members", "Add members".

use guestlist_devtenant::defaults as d;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

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
    // `$select` as a client asks for the name to show in the plan; a navigation or unknown
    // property is Graph's 400.
    let (st, sel) = api
        .call(
            Method::GET,
            &format!("/groups/{g}?$select=id,displayName,visibility"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{sel}");
    assert_eq!(
        sel,
        json!({"@odata.context": format!("{}/$metadata#groups(id,displayName,visibility)/$entity", api.t.graph_base()),
            "id": g, "displayName": d::PARTNERS_GROUP_NAME, "visibility": null})
    );
    for bad in ["members", "displayNam"] {
        let (st, err) = api
            .call(Method::GET, &format!("/groups/{g}?$select={bad}"), None)
            .await;
        assert_eq!(st, 400);
        assert_eq!(err["error"]["code"], "BadRequest");
    }

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
    // `$` percent-encoded in the path (as some HTTP clients send it) is the same route.
    let (st, err) = api
        .call(
            Method::POST,
            &format!("/groups/{g}/members/%24ref"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(err["error"]["code"], "Request_BadRequest");
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
