//! Reviewing requests: the side-by-side view of one request with its directory look-ups
//! ([`Reviewer::detail`]), and approve/deny, which put decisions into the durable outbox and
//! drain it ([`Reviewer::approve`], [`Reviewer::deny`]; the state machine is in `decide`).

use guestlist_core::model::{ApprovalRequest, Grant, RequestState};
use guestlist_core::plan::plan;
use serde_json::Value;
use time::OffsetDateTime;

use crate::api::ApiFailure;
use crate::{
    DecisionKind, DecisionOutcome, DirectoryCheck, DirectoryMatch, OutboxState, Outcome,
    RequestDetail, Reviewer, ReviewerError, Settings, codes, decide, detail,
};

impl Reviewer {
    /// The side-by-side view of one request. Reads the cache (or, for a request not cached,
    /// the outbox snapshot or the server); when signed in and online, refreshes the request from
    /// the server and runs the plan's directory look-ups (by identity and by mail).
    ///
    /// A request not in the pending cache (decided elsewhere, e.g. opened from a
    /// `guestlist://request/<id>` link) is read with `GET /api/requests/{id}` (CONTRACTS.md §5)
    /// and is not cached unless pending.
    ///
    /// Errors: `request.not_found`, `storage.error`; for a request neither cached nor in the
    /// outbox, the server call's failure (`network.offline` when it cannot be reached,
    /// `auth.not_signed_in`, …). Look-up failures are reported inside
    /// [`RequestDetail::directory`], not as an error.
    pub async fn detail(&self, id: String) -> Result<RequestDetail, ReviewerError> {
        let inner = &self.inner;
        let outbox = inner.cache.outbox(&id)?;
        let cached = inner
            .cache
            .request(&id)?
            .or_else(|| outbox.as_ref().map(|o| o.request.clone()));
        let signed_in = inner.rt(|r| r.session.is_some());
        let mut request = cached;
        if signed_in {
            let rid = id.clone();
            match inner
                .with_api(|api, t| {
                    let rid = rid.clone();
                    async move { api.get(&t, &rid).await }
                })
                .await
            {
                Ok(fresh) => {
                    if fresh.state == RequestState::Pending {
                        inner
                            .cache
                            .store_pending(std::slice::from_ref(&fresh), false)?;
                    } else {
                        inner.cache.remove_request(&id)?;
                    }
                    request = Some(fresh);
                }
                Err(ApiFailure::NotFound(m)) if request.is_none() => {
                    return Err(ReviewerError::new(codes::NOT_FOUND, m));
                }
                // Not cached (a link to a request decided elsewhere): only the server has it, so
                // its failure is the answer (`network.offline` offline), not "not cached".
                Err(f) if request.is_none() => {
                    let e = f.to_error();
                    inner.note_error(&e);
                    return Err(e);
                }
                Err(f) => inner.note_error(&f.to_error()),
            }
        }
        let request = request.ok_or_else(|| {
            ReviewerError::new(
                codes::NOT_FOUND,
                format!("request {id} is not in the local cache"),
            )
        })?;
        let settings = self.settings();
        let directory = if signed_in {
            self.lookups(&request, &settings).await
        } else {
            DirectoryCheck {
                checked: false,
                matches: vec![],
                error: Some(ReviewerError::new(
                    codes::NOT_SIGNED_IN,
                    "sign in to check the directory",
                )),
            }
        };
        let names = self
            .grant_names(&request.grants, signed_in, &settings)
            .await;
        let approver = inner.rt(|r| {
            r.session
                .as_ref()
                .map(|s| (s.object_id.clone(), s.name.clone()))
        });
        let d = detail::build(
            request,
            &settings.provisioning,
            directory,
            outbox.map(|o| o.item()),
        );
        Ok(detail::with_grants(
            d,
            &names,
            approver.as_ref().map(|(id, n)| (id.as_str(), n.as_str())),
        ))
    }

    /// Display names of what `grants` name: from the local cache (`meta` keys
    /// `graph-name:<object id>` and `graph-role:<service principal id>:<app role id>`), and
    /// when signed in and online, those not cached yet from Graph (`GET /groups/{id}`,
    /// `GET /servicePrincipals/{id}`, `GET /users/{id}`), then cached. Anything Graph cannot
    /// answer stays unnamed (the UI shows the id).
    async fn grant_names(
        &self,
        grants: &[Grant],
        signed_in: bool,
        settings: &Settings,
    ) -> detail::GrantNames {
        let cache = &self.inner.cache;
        let mut names = detail::GrantNames::default();
        let mut missing: Vec<&Grant> = Vec::new();
        for g in grants {
            let (id, role) = match g {
                Grant::Group { group_id } => (group_id, None),
                Grant::Sponsor { sponsor_id } => (sponsor_id, None),
                Grant::AppRole {
                    resource_id,
                    app_role_id,
                } => (resource_id, Some(app_role_id)),
                Grant::ApproverSponsor => continue,
            };
            let id = id.to_ascii_lowercase();
            let name = cache.meta(&format!("graph-name:{id}")).ok().flatten();
            let role_name = role.map(|r| {
                let r = r.to_ascii_lowercase();
                let n = cache.meta(&format!("graph-role:{id}:{r}")).ok().flatten();
                (r, n)
            });
            if let Some(n) = &name {
                names.names.insert(id.clone(), n.clone());
            }
            if let Some((r, Some(n))) = &role_name {
                names.roles.insert((id.clone(), r.clone()), n.clone());
            }
            if name.is_none() || role_name.as_ref().is_some_and(|(_, n)| n.is_none()) {
                missing.push(g);
            }
        }
        if missing.is_empty() || !signed_in {
            return names;
        }
        let Ok(token) = self.inner.auth.graph_token(settings).await else {
            return names;
        };
        let graph = self.inner.graph_client();
        for g in missing {
            match g {
                Grant::Group { group_id } => {
                    if let Ok(n) = graph.group_name(&token, group_id).await {
                        let id = group_id.to_ascii_lowercase();
                        let _ = cache.set_meta(&format!("graph-name:{id}"), Some(&n));
                        names.names.insert(id, n);
                    }
                }
                Grant::Sponsor { sponsor_id } => {
                    if let Ok(u) = graph
                        .get_user(&token, sponsor_id, Some("id,displayName"))
                        .await
                        && let Some(n) = u.get("displayName").and_then(Value::as_str)
                    {
                        let id = sponsor_id.to_ascii_lowercase();
                        let _ = cache.set_meta(&format!("graph-name:{id}"), Some(n));
                        names.names.insert(id, n.to_owned());
                    }
                }
                Grant::AppRole {
                    resource_id,
                    app_role_id,
                } => {
                    if let Ok((app, role)) =
                        graph.app_role_names(&token, resource_id, app_role_id).await
                    {
                        let (id, r) = (
                            resource_id.to_ascii_lowercase(),
                            app_role_id.to_ascii_lowercase(),
                        );
                        let _ = cache.set_meta(&format!("graph-name:{id}"), Some(&app));
                        names.names.insert(id.clone(), app);
                        if let Some(role) = role {
                            let _ = cache.set_meta(&format!("graph-role:{id}:{r}"), Some(&role));
                            names.roles.insert((id, r), role);
                        }
                    }
                }
                Grant::ApproverSponsor => {}
            }
        }
        names
    }

    async fn lookups(&self, request: &ApprovalRequest, settings: &Settings) -> DirectoryCheck {
        let fail = |e: ReviewerError| DirectoryCheck {
            checked: false,
            matches: vec![],
            error: Some(e),
        };
        let claims = match request.typed_claims() {
            Ok(c) => c,
            Err(e) => return fail(ReviewerError::new(codes::PLAN, e.to_string())),
        };
        let p = match plan(&claims, &settings.provisioning) {
            Ok(p) => p,
            Err(e) => return fail(ReviewerError::new(codes::PLAN, e.to_string())),
        };
        let token = match self.inner.auth.graph_token(settings).await {
            Ok(t) => t,
            Err(e) => {
                self.inner.note_error(&e);
                return fail(e);
            }
        };
        let graph = self.inner.graph_client();
        let mut matches: Vec<DirectoryMatch> = Vec::new();
        for l in &p.lookups {
            let found_by = if l.path.contains("identities/any") {
                "identity"
            } else {
                "mail"
            };
            match graph.find_users(&token, l).await {
                Ok(users) => {
                    for u in users {
                        let uid = u.get("id").cloned().unwrap_or(Value::Null);
                        if !matches.iter().any(|m| m.user.get("id") == Some(&uid)) {
                            matches.push(DirectoryMatch {
                                found_by: found_by.into(),
                                user: u,
                            });
                        }
                    }
                }
                Err(e) => {
                    let e: ReviewerError = e.into();
                    self.inner.note_error(&e);
                    return DirectoryCheck {
                        checked: false,
                        matches,
                        error: Some(e),
                    };
                }
            }
        }
        DirectoryCheck {
            checked: true,
            matches,
            error: None,
        }
    }

    async fn decide(
        &self,
        ids: Vec<String>,
        kind: DecisionKind,
        reason: Option<String>,
    ) -> Result<Vec<DecisionOutcome>, ReviewerError> {
        if ids.is_empty() {
            return Err(ReviewerError::new(codes::INVALID_INPUT, "no request ids"));
        }
        let now = OffsetDateTime::now_utc();
        let delay = self.settings().undo_seconds;
        let not_before = now + time::Duration::seconds(i64::from(delay));
        let mut outcomes: Vec<Option<DecisionOutcome>> = vec![None; ids.len()];
        let mut queued = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let request = match self.inner.cache.request(id)? {
                Some(r) => Some(r),
                None => self.inner.cache.outbox(id)?.map(|o| o.request),
            };
            let request = match request {
                Some(r) => r,
                None => {
                    let rid = id.clone();
                    match self
                        .inner
                        .with_api(|api, t| {
                            let rid = rid.clone();
                            async move { api.get(&t, &rid).await }
                        })
                        .await
                    {
                        Ok(r) => r,
                        Err(f) => {
                            outcomes[n] = Some(DecisionOutcome {
                                id: id.clone(),
                                outcome: Outcome::Failed,
                                state: OutboxState::Failed,
                                directory_object_id: None,
                                how: None,
                                error: Some(f.to_error()),
                                current: None,
                                label: id.clone(),
                                undo_until: None,
                                grants_failed: 0,
                            });
                            continue;
                        }
                    }
                }
            };
            // Durable before anything else: the UI may say "queued" from here on.
            self.inner
                .cache
                .enqueue_after(&request, kind, reason.as_deref(), now, not_before)?;
            queued.push(id.clone());
            if self.inner.crash_after_write(OutboxState::Queued) {
                return Err(decide::crash());
            }
        }
        // With an undo window the outbox worker sends them when it ends; without, now.
        let drained = if delay == 0 {
            self.inner.drain(Some(&queued)).await
        } else {
            self.inner.kick.notify_one();
            Ok(vec![])
        };
        if let Err(e) = &drained {
            self.inner.note_error(e);
        }
        for (n, id) in ids.iter().enumerate() {
            if outcomes[n].is_some() {
                continue;
            }
            let row = self
                .inner
                .cache
                .outbox(id)?
                .ok_or_else(|| ReviewerError::storage(format!("outbox row {id} vanished")))?;
            let mut o = decide::outcome(&row);
            if let (Err(e), true) = (&drained, o.error.is_none() && o.outcome == Outcome::Queued) {
                o.error = Some(e.clone());
            }
            outcomes[n] = Some(o);
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Approves requests: each goes into the durable outbox first, then the outbox is drained
    /// (look-ups, `POST /users` or `POST /invitations` + `PATCH`, then the decision report).
    /// With [`Settings::undo_seconds`] > 0 nothing is sent before the undo window ends
    /// (outcome `queued` with `undoUntil`; [`Reviewer::undo`] cancels); the outbox worker sends
    /// it then.
    /// Offline → outcome `queued` (sent by the next [`Reviewer::sync`] or [`Reviewer::drain`]).
    /// Several federated requests share `$batch` calls.
    ///
    /// Errors: `input.invalid` (no ids), `storage.error`. Per-request problems (conflict, Graph
    /// error, offline) are in each [`DecisionOutcome`].
    pub async fn approve(&self, ids: Vec<String>) -> Result<Vec<DecisionOutcome>, ReviewerError> {
        self.decide(ids, DecisionKind::Approve, None).await
    }

    /// Denies requests with a reason (required; stored and audited, never shown to the user).
    /// Same outbox path as [`Reviewer::approve`], without Graph calls.
    ///
    /// Errors: `input.invalid` (no ids, empty reason), `storage.error`.
    pub async fn deny(
        &self,
        ids: Vec<String>,
        reason: String,
    ) -> Result<Vec<DecisionOutcome>, ReviewerError> {
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(ReviewerError::new(
                codes::INVALID_INPUT,
                "a deny reason is required",
            ));
        }
        self.decide(ids, DecisionKind::Deny, Some(reason)).await
    }
}
