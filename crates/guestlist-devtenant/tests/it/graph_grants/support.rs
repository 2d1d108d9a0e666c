//! Helpers of the grant tests: the schema read from disk, the docs fixtures, an HTTP client
//! with a Graph token holding every grant permission.

use std::sync::OnceLock;

use guestlist_devtenant::{
    DevTenant, DevTenantConfig, DevTenantHandle, StartOptions, defaults as d,
};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) const GRAPH: &str = "https://graph.microsoft.com";
/// Every Graph permission the grants need, as one delegated scope string.
pub(crate) const ALL_GRANT_SCOPES: &str = "https://graph.microsoft.com/GroupMember.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/Application.Read.All";

pub(crate) fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/graph-subset.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

pub(crate) fn violations(name: &str, body: &Value) -> Vec<String> {
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

pub(crate) fn assert_valid(name: &str, body: &Value) {
    let errors = violations(name, body);
    assert!(errors.is_empty(), "{name}: {errors:?}\nbody: {body}");
}

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/grants/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub(crate) fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

pub(crate) fn dir_ref(id: &str) -> Value {
    json!({"@odata.id": format!("{GRAPH}/v1.0/directoryObjects/{id}")})
}

pub(crate) struct Api {
    pub(crate) t: DevTenantHandle,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
}

impl Api {
    pub(crate) async fn start(cfg: DevTenantConfig, opts: StartOptions) -> Self {
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
    pub(crate) async fn new() -> Self {
        Self::start(DevTenantConfig::default(), StartOptions::default()).await
    }
    /// One Graph call with `token` (the default token when `None`): status, headers, JSON body
    /// (`Null` when empty). Error bodies must be ODataErrors.
    pub(crate) async fn call_as(
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
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (st, _, b) = self.call_as(method, path, body, None).await;
        (st, b)
    }
    /// Creates a guest through `POST /users` and returns its object ID.
    pub(crate) async fn guest(&self, email: &str) -> String {
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

pub(crate) fn assert_error(body: &Value, code: &str, message: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
}
