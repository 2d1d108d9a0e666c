//! The grant calls approval makes once the guest account exists (issue 14 §1), idempotent:
//!
//! - `POST /groups/{id}/members/$ref` with `{"@odata.id": "…/directoryObjects/{user}"}`
//!   (Graph v1.0 "Add members");
//! - `POST /users/{id}/appRoleAssignments` with `principalId`, `resourceId`, `appRoleId`
//!   ("Grant an appRoleAssignment to a user");
//! - `POST /users/{id}/sponsors/$ref` with `{"@odata.id": "…"}` ("Add sponsor");
//! - several at once through `$batch` ([`GraphClient::grant_all`], at most 20 per batch request).
//!
//! Graph refuses a grant that is already in place with HTTP 400: "One or more added object
//! references already exist for the following modified properties: 'members'" (members and
//! sponsors) and "Permission being assigned already exists on the object" (app roles). Both
//! count as success here ([`is_already_granted`]), so a retried or resumed approval grants
//! each thing once and never fails on what an earlier attempt did.

use guestlist_core::model::Grant;
use guestlist_core::plan::{GraphCall, grant_call};

use crate::{BatchItem, Error, GraphClient, GraphError, check_id};

/// `true` when Graph's error says the grant already exists (see the module docs): a 400 whose
/// message is one of Graph's two "already exist" sentences.
pub fn is_already_granted(e: &GraphError) -> bool {
    e.status == 400
        && (e
            .message
            .contains("One or more added object references already exist")
            || e.message
                .contains("Permission being assigned already exists"))
}

fn settle(r: Result<serde_json::Value, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(Error::Graph(g)) if is_already_granted(&g) => Ok(()),
        Err(e) => Err(e),
    }
}

impl GraphClient {
    /// Runs one grant for `user_id` ([`grant_call`]; `approver_id` is the sponsor of
    /// [`Grant::ApproverSponsor`]). "Already granted" is success.
    ///
    /// Errors: as [`GraphClient::send`]; [`Error::Invalid`] for an id with `/`, `?` or `#`.
    pub async fn grant(
        &self,
        token: &str,
        grant: &Grant,
        user_id: &str,
        approver_id: &str,
    ) -> Result<(), Error> {
        check_id(user_id)?;
        check_id(approver_id)?;
        settle(
            self.call(token, &grant_call(grant, user_id, approver_id))
                .await,
        )
    }

    /// `POST /groups/{group_id}/members/$ref`: makes `user_id` a member ("already a member"
    /// is success).
    ///
    /// Errors: as [`GraphClient::grant`].
    pub async fn add_group_member(
        &self,
        token: &str,
        group_id: &str,
        user_id: &str,
    ) -> Result<(), Error> {
        check_id(group_id)?;
        let g = Grant::Group {
            group_id: group_id.to_owned(),
        };
        self.grant(token, &g, user_id, user_id).await
    }

    /// `POST /users/{user_id}/appRoleAssignments`: assigns the app role `app_role_id` of the
    /// service principal `resource_id` ("already assigned" is success).
    ///
    /// Errors: as [`GraphClient::grant`].
    pub async fn assign_app_role(
        &self,
        token: &str,
        user_id: &str,
        resource_id: &str,
        app_role_id: &str,
    ) -> Result<(), Error> {
        let g = Grant::AppRole {
            resource_id: resource_id.to_owned(),
            app_role_id: app_role_id.to_owned(),
        };
        self.grant(token, &g, user_id, user_id).await
    }

    /// `POST /users/{user_id}/sponsors/$ref`: makes `sponsor_id` a sponsor of the user
    /// ("already a sponsor" is success).
    ///
    /// Errors: as [`GraphClient::grant`].
    pub async fn add_sponsor(
        &self,
        token: &str,
        user_id: &str,
        sponsor_id: &str,
    ) -> Result<(), Error> {
        check_id(sponsor_id)?;
        let g = Grant::Sponsor {
            sponsor_id: sponsor_id.to_owned(),
        };
        self.grant(token, &g, user_id, user_id).await
    }

    /// `GET /groups/{id}?$select=id,displayName`: the group's display name, for the plan on
    /// screen ("added to group Partners-Fabrikam").
    ///
    /// Errors: as [`GraphClient::send`] (404 for an unknown id); [`Error::Decode`] without a
    /// `displayName`.
    pub async fn group_name(&self, token: &str, group_id: &str) -> Result<String, Error> {
        check_id(group_id)?;
        let g = self
            .send(
                token,
                "GET",
                &format!("/groups/{group_id}?$select=id,displayName"),
                None,
            )
            .await?;
        g.get("displayName")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode("a group without displayName".into()))
    }

    /// `GET /servicePrincipals/{id}?$select=id,displayName,appRoles`: the application's display
    /// name and the display name of its app role `app_role_id` (`None` when the role is not
    /// among its `appRoles`, e.g. the nil GUID of default access), for "app role Reader in
    /// Contoso Portal".
    ///
    /// Errors: as [`GraphClient::group_name`].
    pub async fn app_role_names(
        &self,
        token: &str,
        resource_id: &str,
        app_role_id: &str,
    ) -> Result<(String, Option<String>), Error> {
        check_id(resource_id)?;
        let sp = self
            .send(
                token,
                "GET",
                &format!("/servicePrincipals/{resource_id}?$select=id,displayName,appRoles"),
                None,
            )
            .await?;
        let name = sp
            .get("displayName")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode("a service principal without displayName".into()))?;
        let role = sp
            .get("appRoles")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| {
                r.get("id")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(app_role_id))
            })
            .and_then(|r| r.get("displayName").and_then(serde_json::Value::as_str))
            .map(str::to_owned);
        Ok((name, role))
    }

    /// Runs grant calls (from [`grant_call`]) through `$batch`, 20 per batch request, each
    /// throttled item retried on its own ([`GraphClient::batch`]). Returns one result per call,
    /// in input order: `Ok` when granted or already granted, else Graph's error for that item.
    ///
    /// Errors: [`Error::Network`] / [`Error::Graph`] when a whole batch request failed (then
    /// nothing is known about its items: run them again, they are idempotent).
    pub async fn grant_all(
        &self,
        token: &str,
        calls: &[GraphCall],
    ) -> Result<Vec<Result<(), GraphError>>, Error> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let items = calls
            .iter()
            .enumerate()
            .map(|(i, c)| BatchItem {
                id: i.to_string(),
                method: c.method.clone(),
                url: c.path.clone(),
                body: c.body.clone(),
                depends_on: vec![],
            })
            .collect();
        let results = self.batch(token, items).await?;
        let mut out: Vec<Result<(), GraphError>> = calls
            .iter()
            .map(|_| {
                Err(GraphError {
                    status: 0,
                    code: "UnknownError".into(),
                    message: "no answer for this batch item".into(),
                    request_id: None,
                    date: None,
                })
            })
            .collect();
        for r in results {
            let Some(slot) = r.id.parse::<usize>().ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            *slot = if r.is_success() {
                Ok(())
            } else {
                let e = r.error.clone().unwrap_or_else(|| GraphError {
                    status: r.status,
                    code: "UnknownError".into(),
                    message: "batch item failed".into(),
                    request_id: None,
                    date: None,
                });
                if is_already_granted(&e) {
                    Ok(())
                } else {
                    Err(e)
                }
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, message: &str) -> GraphError {
        GraphError {
            status,
            code: "Request_BadRequest".into(),
            message: message.into(),
            request_id: None,
            date: None,
        }
    }

    #[test]
    fn already_granted_is_graphs_two_sentences_on_400_only() {
        assert!(is_already_granted(&err(
            400,
            "One or more added object references already exist for the following modified properties: 'members'."
        )));
        assert!(is_already_granted(&err(
            400,
            "Permission being assigned already exists on the object"
        )));
        assert!(!is_already_granted(&err(
            403,
            "Permission being assigned already exists on the object"
        )));
        assert!(!is_already_granted(&err(
            400,
            "Another object with the same value for property userPrincipalName already exists."
        )));
    }
}
