//! What the signed-in approver may complete, known before Approve: their Microsoft Entra
//! directory roles, read from the `wids` claim of the Graph access token (Entra emits it when
//! the app registration's `groupMembershipClaims` includes `DirectoryRole` or `All`), else from
//! Graph `GET /me/memberOf` (directory roles' `roleTemplateId`).
//!
//! Role template IDs ("Microsoft Entra built-in roles"): *User Administrator*
//! `fe930be7-5e62-47db-91af-98c3a49a38b1` (creates and updates users, invites guests), *Guest
//! Inviter* `95e79109-95c0-4d8e-aee3-d01accf2d47b` (invites guests only: it cannot
//! `POST /users` for federated users, nor update the invited user's profile), *Global
//! Administrator* `62e90394-69f5-4237-9190-012177145e10`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

/// *User Administrator* role template ID.
pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
/// *Guest Inviter* role template ID.
pub const GUEST_INVITER: &str = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
/// *Global Administrator* role template ID.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The approver's directory roles and which approvals they can complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ApproverRights {
    /// Where the roles come from: `token` (`wids`), `memberOf` (Graph), or `unknown`.
    pub source: String,
    /// Role names Guestlist knows among the roles (`User Administrator`, `Guest Inviter`, …).
    pub roles: Vec<String>,
    /// `POST /users`: approvals of Facebook, Google and e-mail one-time passcode users.
    pub can_create_users: bool,
    /// `POST /invitations`: invite Entra ID and Microsoft account users.
    pub can_invite: bool,
    /// `PATCH /users/{id}`: write the collected attributes of an invited user.
    pub can_update_users: bool,
    /// One sentence for the approver.
    pub summary: String,
}

/// The `wids` claim of a JWT (payload only; no signature check: this informs the UI, Graph
/// enforces the roles). `None` when the token is not a JWT or has no `wids`.
pub fn wids_of_token(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let list = claims.get("wids")?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// The role template IDs of a Graph `GET /me/memberOf` answer (its `directoryRole` entries).
pub fn roles_of_member_of(body: &Value) -> Vec<String> {
    body.get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| {
            o.get("@odata.type").and_then(Value::as_str) == Some("#microsoft.graph.directoryRole")
        })
        .filter_map(|o| o.get("roleTemplateId").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// The rights of role template IDs `wids` read from `source`.
pub fn rights(wids: &[String], source: &str) -> ApproverRights {
    let has = |id: &str| wids.iter().any(|w| w.eq_ignore_ascii_case(id));
    let admin = has(USER_ADMINISTRATOR) || has(GLOBAL_ADMINISTRATOR);
    let inviter = has(GUEST_INVITER);
    let mut roles = Vec::new();
    if has(GLOBAL_ADMINISTRATOR) {
        roles.push("Global Administrator".to_owned());
    }
    if has(USER_ADMINISTRATOR) {
        roles.push("User Administrator".to_owned());
    }
    if inviter {
        roles.push("Guest Inviter".to_owned());
    }
    let summary = if admin {
        "You can complete every approval: your role creates guest accounts for Facebook, Google and e-mail users and invites Entra ID and Microsoft account users.".to_owned()
    } else if inviter {
        "Guest Inviter: you can invite Entra ID and Microsoft account users, but not set their attributes, and not create Facebook, Google or e-mail users — those need User Administrator.".to_owned()
    } else {
        "No directory role: you can approve only if the tenant lets members invite guests (Entra ID and Microsoft account users, without their attributes). Facebook, Google and e-mail users need User Administrator.".to_owned()
    };
    ApproverRights {
        source: source.to_owned(),
        roles,
        can_create_users: admin,
        // Members may invite under the default "guest invite settings".
        can_invite: true,
        can_update_users: admin,
        summary,
    }
}

/// Rights when the roles could not be read.
pub fn unknown(why: &str) -> ApproverRights {
    ApproverRights {
        source: "unknown".into(),
        roles: vec![],
        can_create_users: true,
        can_invite: true,
        can_update_users: true,
        summary: format!(
            "Your directory roles could not be read ({why}): Microsoft Graph decides at approval."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        )
    }

    #[test]
    fn roles_from_the_token_and_from_member_of() {
        let t = jwt(json!({"wids": [USER_ADMINISTRATOR, "b79fbf4d-3ef9-4689-8143-76b194e85509"]}));
        let w = wids_of_token(&t).unwrap();
        let r = rights(&w, "token");
        assert!(r.can_create_users && r.can_update_users);
        assert_eq!(r.roles, ["User Administrator"]);
        assert_eq!(wids_of_token(&jwt(json!({"sub": "x"}))), None);
        assert_eq!(wids_of_token("opaque"), None);
        let inviter = rights(&[GUEST_INVITER.to_owned()], "memberOf");
        assert!(!inviter.can_create_users && !inviter.can_update_users && inviter.can_invite);
        assert!(inviter.summary.contains("need User Administrator"));
        let m = json!({"value": [
            {"@odata.type": "#microsoft.graph.group", "id": "g"},
            {"@odata.type": "#microsoft.graph.directoryRole", "roleTemplateId": GUEST_INVITER}
        ]});
        assert_eq!(roles_of_member_of(&m), [GUEST_INVITER]);
    }
}
