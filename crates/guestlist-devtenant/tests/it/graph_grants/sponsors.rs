//! Sponsors: "Add sponsor", "List sponsors".

use guestlist_devtenant::defaults as d;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

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
