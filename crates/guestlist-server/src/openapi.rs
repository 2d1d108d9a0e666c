//! What `/openapi.json` says beyond the routes' `#[utoipa::path]` annotations: the security
//! schemes (HTTP Basic for Entra's API connectors, CONTRACTS.md §1; bearer JWTs for approvers,
//! §4, and for Entra's custom authentication extensions, §2).
//!
//! Every request and response body is a schema derived from its wire type (`guestlist-core`
//! with the `openapi` feature); `tests` below check the document against the OpenAPI 3.1 schema.

use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds the security schemes the routes name: `basic`, `bearer` and `extensionBearer`.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The username and password configured on the API connector (connector.username / connector.password).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An approver's access token for this API (RS256, the configured issuer and audience, app role Approver).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "extensionBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The token Entra's authentication events service sends to a custom authentication extension.",
                    ))
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(crate::api_doc()).unwrap()
    }

    /// The document is valid against the OpenAPI 3.1 schema published by the OpenAPI
    /// Initiative (`schemas/openapi-3.1.schema.json`, id `https://spec.openapis.org/oas/3.1/schema/2022-10-07`).
    #[test]
    fn the_document_is_valid_openapi_3_1() {
        let schema: Value =
            serde_json::from_str(include_str!("../../../schemas/openapi-3.1.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let doc = doc();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        // The validator does look: a document without `info` or with a 3.0 version fails.
        let mut broken = doc.clone();
        broken.as_object_mut().unwrap().remove("info");
        assert!(!validator.is_valid(&broken));
        broken = doc.clone();
        broken["openapi"] = "3.0.3".into();
        assert!(!validator.is_valid(&broken));
    }

    /// Every request body and every response of every operation has a schema, and every JSON
    /// body refers to a named component schema (not a bare `{"type":"object"}`); every `$ref`
    /// resolves; every security requirement names a declared scheme.
    #[test]
    fn every_body_references_a_schema() {
        let doc = doc();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        let mut bodies = 0;
        let mut problems = Vec::new();
        let paths = doc["paths"].as_object().unwrap();
        // 13 routes on the public listener; /metrics and /openapi.json are the admin
        // listener's and not in this document.
        assert!(paths.len() >= 11, "{:?}", paths.keys());
        assert!(!paths.contains_key("/metrics") && !paths.contains_key("/openapi.json"));
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                let mut contents = Vec::new();
                if let Some(rb) = op.get("requestBody") {
                    contents.push(("request".to_owned(), rb["content"].clone()));
                }
                for (status, resp) in op["responses"].as_object().unwrap() {
                    match resp.get("content") {
                        Some(c) => contents.push((status.clone(), c.clone())),
                        None => problems.push(format!("{at} {status}: no body schema")),
                    }
                }
                for (what, content) in contents {
                    for (mime, media) in content.as_object().unwrap() {
                        bodies += 1;
                        let schema = &media["schema"];
                        let named =
                            schema.get("$ref").is_some() || schema["items"].get("$ref").is_some();
                        let json = mime.contains("json") || mime == "text/event-stream";
                        if json && path != "/openapi.json" && !named {
                            problems.push(format!(
                                "{at} {what} {mime}: {schema} is not a named schema"
                            ));
                        }
                        if schema.is_null() {
                            problems.push(format!("{at} {what} {mime}: no schema"));
                        }
                    }
                }
                for req in op["security"].as_array().into_iter().flatten() {
                    for name in req.as_object().unwrap().keys() {
                        if !schemes.contains_key(name) {
                            problems.push(format!("{at}: unknown security scheme {name}"));
                        }
                    }
                }
                if (path.starts_with("/api/") || path.starts_with("/connectors/"))
                    && op["security"].as_array().is_none_or(Vec::is_empty)
                {
                    problems.push(format!("{at}: no security requirement"));
                }
            }
        }
        // Every $ref anywhere in the document resolves to a component schema.
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.trim_start_matches("#/components/schemas/");
            if !schemas.contains_key(name) {
                problems.push(format!("dangling $ref {r}"));
            }
        }
        for name in [
            "ConnectorClaims",
            "ConnectorAnswer",
            "ExtensionRequest",
            "ExtensionResponse",
            "ErrorBody",
            "ErrorDetail",
            "Code",
            "RequestPage",
            "ApprovalRequest",
            "Decision",
            "DecisionConflict",
            "HistoryEntry",
            "Event",
        ] {
            if !schemas.contains_key(name) {
                problems.push(format!("schema {name} missing"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
        assert!(bodies > 40, "only {bodies} bodies");
        // Wire names as serde writes them (utoipa does not read `rename_all_fields`).
        let decision = serde_json::to_string(&schemas["Decision"]).unwrap();
        assert!(decision.contains("directoryObjectId"), "{decision}");
        let state = serde_json::to_string(&schemas["RequestState"]).unwrap();
        assert!(state.contains("directoryObjectId"), "{state}");
        // The grants each request carries (issue 14 §1), under their wire names.
        let grant = serde_json::to_string(&schemas["Grant"]).unwrap();
        assert!(
            grant.contains("groupId") && grant.contains("approverSponsor"),
            "{grant}"
        );
    }
}
