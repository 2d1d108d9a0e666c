//! Validation of Graph request bodies against `schemas/graph-subset.json` (Microsoft Graph's own
//! v1.0 metadata for users, invitations, app role assignments, `$ref` bodies and `$batch`, as OpenAPI 3.1 / JSON Schema 2020-12;
//! CONTRACTS.md §3). The `strict.*` variants reject unknown property names, which is how Graph
//! answers a typo (400 `Request_BadRequest`).

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// The schema document, compiled into the binary.
pub const GRAPH_SUBSET: &str = include_str!("../../../schemas/graph-subset.json");

/// Parsed schema document (`Value::Null` if the embedded file were not JSON, which a unit test
/// rules out).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(GRAPH_SUBSET).unwrap_or(Value::Null))
}

/// Compiles a validator for `#/components/schemas/{name}` (refs resolve inside the document).
///
/// # Errors
/// The compiler's message if the schema does not compile.
pub fn compile(name: &str) -> Result<Validator, String> {
    let mut root = document().clone();
    if let Value::Object(m) = &mut root {
        m.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        m.insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
    }
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&root)
        .map_err(|e| e.to_string())
}

/// The validators devtenant uses for request bodies.
pub struct Validators {
    /// `strict.microsoft.graph.user` (POST/PATCH /users).
    pub user: Validator,
    /// `strict.microsoft.graph.invitation` (POST /invitations).
    pub invitation: Validator,
    /// `x.batch.request` (POST /$batch).
    pub batch: Validator,
    /// `strict.microsoft.graph.appRoleAssignment` (POST …/appRoleAssignments, …/appRoleAssignedTo).
    pub app_role_assignment: Validator,
    /// `strict.ReferenceCreate`, the `{"@odata.id"}` body of POST …/members/$ref and
    /// …/sponsors/$ref.
    pub reference: Validator,
}

/// The compiled validators (compiled once per process).
///
/// # Errors
/// The compiler's message if one of them does not compile.
pub fn validators() -> Result<&'static Validators, String> {
    static V: OnceLock<Result<Validators, String>> = OnceLock::new();
    V.get_or_init(|| {
        Ok(Validators {
            user: compile("strict.microsoft.graph.user")?,
            invitation: compile("strict.microsoft.graph.invitation")?,
            batch: compile("x.batch.request")?,
            app_role_assignment: compile("strict.microsoft.graph.appRoleAssignment")?,
            reference: compile("strict.ReferenceCreate")?,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Why a body failed its schema: the offending property (JSON pointer below the body, or the
/// unexpected name) and the kind of failure.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaViolation {
    /// A property name the type does not declare (`/identities/0` + `foo`).
    UnknownProperty(String),
    /// A value of the wrong type/shape, at this property path.
    InvalidValue(String),
    /// A required member missing (only `x.batch.request` declares `required`).
    Missing(String),
}

/// Validates `body` and returns the first violation, if any (deterministic: the first error
/// the validator reports).
pub fn check(v: &Validator, body: &Value) -> Option<SchemaViolation> {
    let err = v.iter_errors(body).next()?;
    let path = err
        .instance_path
        .as_str()
        .trim_start_matches('/')
        .to_string();
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        }
    };
    Some(match &err.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            SchemaViolation::UnknownProperty(join(
                unexpected.first().map(String::as_str).unwrap_or_default(),
            ))
        }
        ValidationErrorKind::Required { property } => {
            SchemaViolation::Missing(join(property.as_str().unwrap_or_default()))
        }
        _ => SchemaViolation::InvalidValue(if path.is_empty() {
            "(body)".to_string()
        } else {
            path
        }),
    })
}

/// Property names declared by `strict.microsoft.graph.user`, for `$select` checks.
pub fn user_property_names() -> &'static Vec<String> {
    static P: OnceLock<Vec<String>> = OnceLock::new();
    P.get_or_init(|| {
        document()
            .pointer("/components/schemas/strict.microsoft.graph.user/properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    })
}

/// Whether `strict.microsoft.graph.{type_name}` marks `prop` as a navigation property
/// (`x-ms-navigationProperty`); navigation properties cannot be set in a POST/PATCH body.
pub fn is_navigation(type_name: &str, prop: &str) -> bool {
    document()
        .pointer(&format!("/components/schemas/strict.microsoft.graph.{type_name}/properties/{prop}/x-ms-navigationProperty"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_compile_and_name_the_bad_property() {
        let v = validators().unwrap();
        assert_eq!(
            check(
                &v.user,
                &json!({"displayName": "x", "accountEnabled": true})
            ),
            None
        );
        assert_eq!(
            check(&v.user, &json!({"displayNam": "x"})),
            Some(SchemaViolation::UnknownProperty("displayNam".into()))
        );
        assert_eq!(
            check(
                &v.user,
                &json!({"identities": [{"issuer": "x", "bogus": 1}]})
            ),
            Some(SchemaViolation::UnknownProperty(
                "identities/0/bogus".into()
            ))
        );
        assert_eq!(
            check(&v.user, &json!({"accountEnabled": "yes"})),
            Some(SchemaViolation::InvalidValue("accountEnabled".into()))
        );
        assert_eq!(
            check(
                &v.user,
                &json!({"extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_Foo": "x"})
            ),
            None
        );
        assert!(check(&v.user, &json!({"extension_<extensions-app-id>_Foo": "x"})).is_some());
        assert!(check(&v.batch, &json!({"requests": []})).is_some());
        assert!(user_property_names().iter().any(|p| p == "identities"));
        assert!(is_navigation("user", "manager"));
        assert!(!is_navigation("user", "mail"));
    }
}
