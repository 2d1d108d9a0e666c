//! The OData query options devtenant understands on `/users` ("Use query parameters to
//! customize responses", "Use the $filter query parameter", "Use the $select query
//! parameter"; Microsoft Graph known issues for the `in` clause limit): the `$filter` forms
//! Guestlist sends (CONTRACTS.md §3), `$select` validation and the projection of a user onto
//! its selected or default properties.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::users::DEFAULT_USER_PROPERTIES;
use super::{Ctx, GraphResponse, odata_error};
use crate::schema;
use crate::state::GraphUser;

/// A parsed `$filter` (the forms Guestlist uses).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `mail eq '…'` or `userPrincipalName eq '…'` (property name as written in Graph).
    Eq(&'static str, String),
    /// `mail in ('…', '…')` or `userPrincipalName in (…)`: up to [`FILTER_MAX_CLAUSES`] values.
    In(&'static str, Vec<String>),
    /// `identities/any(c:c/issuerAssignedId eq '…' and c/issuer eq '…')` (either order).
    Identity {
        /// `c/issuer`.
        issuer: String,
        /// `c/issuerAssignedId`.
        issuer_assigned_id: String,
    },
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(' ') {
            self.i += 1;
        }
    }
    fn ident(&mut self) -> &'a str {
        self.ws();
        let start = self.i;
        while let Some(c) = self.s[self.i..].chars().next() {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '.' {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
        &self.s[start..self.i]
    }
    fn punct(&mut self, c: char) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// An OData string literal: `'…'` with `''` for a quote.
    fn string(&mut self) -> Option<String> {
        self.ws();
        if !self.s[self.i..].starts_with('\'') {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.s[self.i..].chars().next()?;
            self.i += c.len_utf8();
            if c == '\'' {
                if self.s[self.i..].starts_with('\'') {
                    self.i += 1;
                    out.push('\'');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
    }
    fn end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }
}

/// Parses the supported `$filter` forms.
///
/// # Errors
/// The Graph message for an unsupported or malformed clause.
pub fn parse_filter(f: &str) -> Result<Filter, String> {
    let unsupported = || {
        format!(
            "Unsupported or invalid query filter clause specified for property '{}' of resource 'User'.",
            f.split_whitespace().next().unwrap_or(f)
        )
    };
    let mut c = Cursor { s: f, i: 0 };
    let first = c.ident();
    if first.eq_ignore_ascii_case("identities/any") {
        if !c.punct('(') {
            return Err(unsupported());
        }
        let var = c.ident().to_string();
        if var.is_empty() || !c.punct(':') {
            return Err(unsupported());
        }
        let mut issuer = None;
        let mut assigned = None;
        for i in 0..2 {
            if i == 1 && !c.ident().eq_ignore_ascii_case("and") {
                return Err(unsupported());
            }
            let prop = c.ident();
            let Some(name) = prop.strip_prefix(&format!("{var}/")) else {
                return Err(unsupported());
            };
            if !c.ident().eq_ignore_ascii_case("eq") {
                return Err(unsupported());
            }
            let Some(value) = c.string() else {
                return Err(unsupported());
            };
            match name {
                "issuer" if issuer.is_none() => issuer = Some(value),
                "issuerAssignedId" if assigned.is_none() => assigned = Some(value),
                _ => return Err(unsupported()),
            }
        }
        if !c.punct(')') || !c.end() {
            return Err(unsupported());
        }
        match (issuer, assigned) {
            (Some(issuer), Some(issuer_assigned_id)) => Ok(Filter::Identity {
                issuer,
                issuer_assigned_id,
            }),
            _ => Err(unsupported()),
        }
    } else {
        let prop = if first.eq_ignore_ascii_case("mail") {
            "mail"
        } else if first.eq_ignore_ascii_case("userPrincipalName") {
            "userPrincipalName"
        } else {
            return Err(unsupported());
        };
        let op = c.ident();
        if op.eq_ignore_ascii_case("in") {
            if !c.punct('(') {
                return Err(unsupported());
            }
            let mut values = Vec::new();
            loop {
                let Some(v) = c.string() else {
                    return Err(unsupported());
                };
                values.push(v);
                if c.punct(')') {
                    break;
                }
                if !c.punct(',') {
                    return Err(unsupported());
                }
            }
            if !c.end() {
                return Err(unsupported());
            }
            if values.len() > FILTER_MAX_CLAUSES {
                return Err(format!(
                    "Too many child clauses specified in search filter expression containing 'OR' operators: {}. Max allowed: {FILTER_MAX_CLAUSES}.",
                    values.len()
                ));
            }
            return Ok(Filter::In(prop, values));
        }
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        let Some(value) = c.string() else {
            return Err(unsupported());
        };
        if !c.end() {
            return Err(unsupported());
        }
        Ok(Filter::Eq(prop, value))
    }
}

/// Graph's limit on the values of one `in (…)` list (it counts them as `or` clauses): more
/// fail with `Request_UnsupportedQuery` (Microsoft Graph known issues, query parameter
/// limitations).
pub const FILTER_MAX_CLAUSES: usize = 15;

pub(super) fn matches_filter(u: &GraphUser, f: &Filter) -> bool {
    match f {
        Filter::Eq(prop, v) => u
            .get(*prop)
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(v)),
        Filter::In(prop, vs) => u
            .get(*prop)
            .and_then(Value::as_str)
            .is_some_and(|x| vs.iter().any(|v| x.eq_ignore_ascii_case(v))),
        Filter::Identity {
            issuer,
            issuer_assigned_id,
        } => u
            .get("identities")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter().any(|i| {
                    i.get("issuer")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(issuer))
                        && i.get("issuerAssignedId")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(issuer_assigned_id))
                })
            }),
    }
}

fn is_extension_name(p: &str) -> bool {
    p.strip_prefix("extension_")
        .and_then(|r| r.split_once('_'))
        .is_some_and(|(app, name)| {
            app.len() == 32 && app.chars().all(|c| c.is_ascii_hexdigit()) && !name.is_empty()
        })
}

pub(super) fn parse_select(
    ctx: &Ctx,
    raw: Option<&str>,
) -> Result<Option<Vec<String>>, GraphResponse> {
    let Some(raw) = raw else { return Ok(None) };
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let known = schema::user_property_names()
            .iter()
            .find(|n| n.eq_ignore_ascii_case(p));
        match known {
            Some(n) if !schema::is_navigation("user", n) => out.push(n.clone()),
            _ if is_extension_name(p) => out.push(p.to_string()),
            _ => {
                return Err(odata_error(
                    ctx,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Parsing OData Select and Expand failed: Could not find a property named '{p}' on type 'microsoft.graph.user'."
                    ),
                ));
            }
        }
    }
    Ok(Some(out))
}

/// The value Graph shows for a selected property the user does not have: `[]` for
/// collections, `null` for nullable properties, nothing otherwise.
fn absent_value(prop: &str) -> Option<Value> {
    let ty = schema::document().pointer(&format!(
        "/components/schemas/microsoft.graph.user/allOf/1/properties/{prop}/type"
    ));
    let has = |t: &str| {
        ty.is_some_and(|v| v == t || v.as_array().is_some_and(|a| a.iter().any(|x| x == t)))
    };
    if has("array") {
        Some(json!([]))
    } else if has("null") || prop.starts_with("extension_") {
        Some(Value::Null)
    } else if ty.is_none() {
        // `anyOf` object-or-null properties.
        Some(Value::Null)
    } else {
        None
    }
}

pub(super) fn project(u: &GraphUser, select: Option<&[String]>) -> Value {
    let props: Vec<&str> = match select {
        Some(sel) => sel.iter().map(String::as_str).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    let mut out = Map::new();
    for p in props {
        match u.get(p) {
            Some(v) => {
                out.insert(p.to_string(), v.clone());
            }
            None => {
                if let Some(v) = absent_value(p) {
                    out.insert(p.to_string(), v);
                }
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("mail eq 'o''brien@x.com'"),
            Ok(Filter::Eq("mail", "o'brien@x.com".into()))
        );
        assert_eq!(
            parse_filter("userPrincipalName eq 'a@b'"),
            Ok(Filter::Eq("userPrincipalName", "a@b".into()))
        );
        assert_eq!(
            parse_filter(
                "identities/any(c:c/issuerAssignedId eq '0123' and c/issuer eq 'facebook.com')"
            ),
            Ok(Filter::Identity {
                issuer: "facebook.com".into(),
                issuer_assigned_id: "0123".into()
            })
        );
        assert_eq!(
            parse_filter("identities/any(x:x/issuer eq 'mail' and x/issuerAssignedId eq 'a@b.c')"),
            Ok(Filter::Identity {
                issuer: "mail".into(),
                issuer_assigned_id: "a@b.c".into()
            })
        );
        assert!(parse_filter("displayName eq 'x'").is_err());
        assert!(parse_filter("mail eq 'x' or mail eq 'y'").is_err());
        assert_eq!(
            parse_filter("mail in ('a@x.com', 'o''b@y.org')"),
            Ok(Filter::In(
                "mail",
                vec!["a@x.com".into(), "o'b@y.org".into()]
            ))
        );
        let sixteen = (0..16)
            .map(|i| format!("'u{i}@x.com'"))
            .collect::<Vec<_>>()
            .join(",");
        let e = parse_filter(&format!("mail in ({sixteen})")).unwrap_err();
        assert!(e.contains("Max allowed: 15"), "{e}");
        assert!(parse_filter("mail in ()").is_err());
        assert!(parse_filter("mail in ('a'").is_err());
        assert!(parse_filter("mail eq 'unterminated").is_err());
        assert!(parse_filter("identities/any(c:c/issuer eq 'a' and c/issuer eq 'b')").is_err());
        assert!(parse_filter("startswith(mail,'a')").is_err());
    }
}
