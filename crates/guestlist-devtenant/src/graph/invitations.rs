//! `POST /invitations` ("Create invitation", "invitation resource type"; CONTRACTS.md §3) and
//! the redemption link it hands out (`GET /redeem`): B2B guests are created as
//! `PendingAcceptance` and become `Accepted` when the link is followed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::users::find_index;
use super::{Ctx, GraphResponse, bad_json, odata_error};
use crate::schema::{self, SchemaViolation};
use crate::state::{Shared, now_graph};

/// Invitation properties set by the service only.
pub const READ_ONLY_INVITATION_PROPERTIES: &[&str] = &[
    "id",
    "inviteRedeemUrl",
    "invitedUser",
    "status",
    "invitedUserSponsors",
];

fn is_email(e: &str) -> bool {
    match e.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub(super) fn create_invitation(s: &Shared, ctx: &Ctx, body: Value) -> GraphResponse {
    let Some(obj) = body.as_object() else {
        return bad_json(ctx);
    };
    let v = match schema::validators() {
        Ok(v) => v,
        Err(e) => {
            return odata_error(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                &e,
            );
        }
    };
    if let Some(violation) = schema::check(&v.invitation, &body) {
        let msg = match violation {
            SchemaViolation::UnknownProperty(p) => format!(
                "Property '{p}' does not exist as a declared property or extension property."
            ),
            SchemaViolation::InvalidValue(p) | SchemaViolation::Missing(p) => {
                format!("Invalid value specified for property '{p}' of resource 'Invitation'.")
            }
        };
        return odata_error(ctx, StatusCode::BAD_REQUEST, "BadRequest", &msg);
    }
    if let Some(k) = obj
        .keys()
        .find(|k| READ_ONLY_INVITATION_PROPERTIES.contains(&k.as_str()))
    {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Property '{k}' is read-only and cannot be set."),
        );
    }
    for r in ["invitedUserEmailAddress", "inviteRedirectUrl"] {
        if obj.get(r).and_then(Value::as_str).is_none_or(str::is_empty) {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("A value is required for property '{r}' of resource 'Invitation'."),
            );
        }
    }
    let email = obj
        .get("invitedUserEmailAddress")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let redirect = obj
        .get("inviteRedirectUrl")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !is_email(&email) {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The specified email address is invalid.",
        );
    }
    if url::Url::parse(&redirect).is_err() {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The specified inviteRedirectUrl is not a valid URL.",
        );
    }
    let user_type = obj
        .get("invitedUserType")
        .and_then(Value::as_str)
        .unwrap_or("Guest")
        .to_string();
    let display = obj
        .get("invitedUserDisplayName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
    let redeem_token = uuid::Uuid::new_v4().simple().to_string();
    let (user_id, status) = {
        let mut inner = s.lock();
        let existing = inner.users.iter().find(|u| {
            u.get("mail")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(&email))
                || u.get("otherMails")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter()
                            .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(&email)))
                    })
        });
        match existing {
            Some(u) => (
                u.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                u.get("externalUserState")
                    .and_then(Value::as_str)
                    .unwrap_or("Accepted")
                    .to_string(),
            ),
            None => {
                let mut upn = format!("{}#EXT#@{}", email.replace('@', "_"), s.cfg.domain);
                let mut n = 1;
                while find_index(&inner.users, &upn).is_some() {
                    n += 1;
                    upn = format!("{}{n}#EXT#@{}", email.replace('@', "_"), s.cfg.domain);
                }
                let id = uuid::Uuid::new_v4().to_string();
                let now = now_graph();
                let user = json!({
                    "id": id, "userPrincipalName": upn, "displayName": display, "mail": email, "otherMails": [email],
                    "accountEnabled": true, "userType": user_type, "creationType": "Invitation",
                    "externalUserState": "PendingAcceptance", "externalUserStateChangeDateTime": now,
                    "createdDateTime": now, "businessPhones": [],
                    "identities": [{"signInType": "userPrincipalName", "issuer": s.cfg.domain, "issuerAssignedId": upn}],
                });
                if let Value::Object(m) = user {
                    inner.users.push(m);
                }
                (id, "PendingAcceptance".to_string())
            }
        }
    };
    s.lock()
        .redemptions
        .insert(redeem_token.clone(), format!("{user_id} {redirect}"));
    s.persist_logged();
    let send = obj
        .get("sendInvitationMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let redeem_url = format!("{}/redeem?rd={redeem_token}", s.base_url);
    if send {
        tracing::info!(%email, %redeem_url, "graph: invitation e-mail (not sent by devtenant)");
    }
    GraphResponse::json(
        StatusCode::CREATED,
        json!({
            "@odata.context": format!("{}/$metadata#invitations/$entity", s.graph_base()),
            "id": uuid::Uuid::new_v4().to_string(),
            "inviteRedeemUrl": redeem_url,
            "invitedUserDisplayName": obj.get("invitedUserDisplayName").cloned().unwrap_or(Value::Null),
            "invitedUserType": user_type,
            "invitedUserEmailAddress": email,
            "sendInvitationMessage": send,
            "resetRedemption": obj.get("resetRedemption").and_then(Value::as_bool).unwrap_or(false),
            "inviteRedirectUrl": redirect,
            "status": status,
            "invitedUserMessageInfo": obj.get("invitedUserMessageInfo").cloned().unwrap_or(json!({"messageLanguage": null, "ccRecipients": [], "customizedMessageBody": null})),
            "invitedUser": {"id": user_id},
        }),
    )
}

/// `GET /redeem?rd=…`: the invitation redemption link. Marks the guest `Accepted` and redirects
/// to the invitation's `inviteRedirectUrl` (real Entra first signs the guest in and asks for
/// consent).
pub(super) async fn redeem(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let entry = q
        .get("rd")
        .and_then(|t| s.lock().redemptions.get(t).cloned());
    let Some((uid, redirect)) = entry
        .as_deref()
        .and_then(|e| e.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
    else {
        return (StatusCode::NOT_FOUND, "This invitation link is not valid.").into_response();
    };
    {
        let mut inner = s.lock();
        if let Some(i) = find_index(&inner.users, &uid) {
            inner.users[i].insert("externalUserState".into(), json!("Accepted"));
            inner.users[i].insert("externalUserStateChangeDateTime".into(), json!(now_graph()));
        }
    }
    s.persist_logged();
    crate::oidc::found(&redirect)
}
