//! Conformance of devtenant's Graph subset: every response body is validated against
//! `schemas/graph-subset.json` (Microsoft Graph's own metadata), compiled here by the test with
//! `jsonschema` and read from disk, independently of devtenant's embedded copy.

use std::sync::OnceLock;

use guestlist_devtenant::{
    DevTenant, DevTenantConfig, DevTenantHandle, FaultConfig, defaults as d,
};
use serde_json::{Value, json};

mod auth_and_limits;
mod error_shape;
mod users;

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

fn validator(name: &str) -> jsonschema::Validator {
    let mut root = doc().clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap()
}

fn assert_valid(name: &str, body: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} violations: {errors:?}\nbody: {body}"
    );
}

fn assert_odata_error(body: &Value, status: u16, code: &str) {
    assert_valid("microsoft.graph.ODataErrors.ODataError", body);
    assert_eq!(body["error"]["code"], code, "HTTP {status}: {body}");
    let inner = &body["error"]["innerError"];
    for k in ["date", "request-id", "client-request-id"] {
        assert!(inner[k].is_string(), "innerError.{k} missing: {body}");
    }
}

struct Api {
    t: DevTenantHandle,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn new(cfg: DevTenantConfig) -> Self {
        let t = DevTenant::start(cfg).await.unwrap();
        let token = t.mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, "https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/User.Invite.All").unwrap();
        Self {
            t,
            http: reqwest::Client::new(),
            token,
        }
    }
    /// `GET /users?$filter=<filter>` (URL-encoded) with the default token: status and body.
    async fn users_where(&self, filter: &str) -> (u16, Value) {
        let (st, _, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/users?$filter={}", urlenc(filter)),
                None,
                None,
            )
            .await;
        (st, body)
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.t.graph_base()))
            .header("client-request-id", "c-123");
        if let Some(tok) = token.or(Some(&self.token)).filter(|t| !t.is_empty()) {
            req = req.bearer_auth(tok);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        assert!(
            headers.contains_key("request-id"),
            "request-id header missing"
        );
        assert_eq!(headers["client-request-id"], "c-123");
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
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/graph/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("<extensions-app-id>", d::EXTENSIONS_APP_ID);
    serde_json::from_str(&text).unwrap()
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
