//! The approval state machine's transactions (`docs/CONTRACTS.md` §1 "The approval
//! behaviour" and §4): request approval (the connector call), expiry, an approver's decision
//! with optimistic concurrency (`If-Match`) and idempotency (`Idempotency-Key`), the denial of
//! the same person's other requests, and the approver's reads (one request, a page, history).

use guestlist_core::connector::Claims;
use guestlist_core::email;
use guestlist_core::model::{
    Actor, ApprovalRequest, Decision, Event, Flow, HistoryEntry, IdentityKey, ProvisionedBy,
    RequestState, TransitionError,
};
use guestlist_core::policy::{ExpiredBehaviour, MessageKind, Policy, RuleOutcome};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::check_index::check_status_block;
use super::rows::{
    COLUMNS, add_event, add_history, denied_email, get_by_id, get_by_key, row_to_request,
    search_text, upsert,
};
use super::{RequestApprovalOutcome, SqliteStore, StoreError, from_json, to_json, ts};

/// A page of `GET /api/requests` in creation order from `items`, read with one row more than
/// `limit` (`limit + 1`): a row beyond `limit` means more follow, so it is dropped and the cursor
/// of the last kept row is the next page's. `high` is the change mark read before the rows. The
/// one rule both stores apply to a page without `since=`.
pub(crate) fn created_order_page(
    mut items: Vec<ApprovalRequest>,
    limit: usize,
    high: u64,
) -> guestlist_core::model::RequestPage {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(super::rows::encode_cursor)
    } else {
        None
    };
    guestlist_core::model::RequestPage {
        items,
        next_cursor,
        change_seq: Some(high),
        erased: Vec::new(),
    }
}

/// The `LIKE` pattern of a list search `q` (`None` for no or a blank search): the folded text
/// (case, accents: [`email::fold_text`]) with the caller's `%`/`_` removed, so a search never
/// becomes a wildcard. The one rule both stores apply to `GET /api/requests?q=`. The pattern has
/// no escape character, so a backslash matches itself: SQLite's `LIKE` without `ESCAPE`, and
/// PostgreSQL's `LIKE … ESCAPE ''` (its default escape is `\\`). A NUL in `q` is searched as
/// U+FFFD, as claims store it (`guestlist_core::connector`; PostgreSQL refuses NUL in text).
pub(crate) fn search_pattern(q: Option<&str>) -> Option<String> {
    q.filter(|q| !q.trim().is_empty()).map(|q| {
        let folded = email::fold_text(q.trim()).replace(['%', '_'], "");
        format!("%{}%", folded.replace('\0', "\u{FFFD}"))
    })
}

/// `s` with every U+0000 (NUL) replaced by U+FFFD, as claims are (`guestlist_core::connector`):
/// PostgreSQL's `text` and `jsonb` refuse NUL, so neither store keeps one. The one rule both
/// stores apply to the text of a decision, a reopen's reason and an actor.
pub(crate) fn nul_free(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// `decision` and `actor` as both stores store them (and fingerprint the decision for its
/// `Idempotency-Key`): their text [`nul_free`].
pub(crate) fn stored_decision(decision: &Decision, actor: &Actor) -> (Decision, Actor) {
    let decision = match decision {
        Decision::Approve {
            directory_object_id,
            how,
        } => Decision::Approve {
            directory_object_id: nul_free(directory_object_id),
            how: *how,
        },
        Decision::Deny { reason } => Decision::Deny {
            reason: nul_free(reason),
        },
    };
    (decision, stored_actor(actor))
}

/// `actor` with its text [`nul_free`].
pub(crate) fn stored_actor(actor: &Actor) -> Actor {
    let mut a = actor.clone();
    a.kind = nul_free(&a.kind);
    a.id = nul_free(&a.id);
    a.name = nul_free(&a.name);
    a.username = a.username.as_deref().map(nul_free);
    a.client = a.client.as_deref().map(nul_free);
    a
}

/// A person's first request, as the policy's evaluation of their claims decides it: the row
/// (version 1, one attempt, no grants: those are served from the policy), the history action and
/// actor, the block page to answer (`None` → `Continue`) and the event kind (`request.created`, or
/// `request.decided` when a rule decided it). The one rule both stores apply
/// (`docs/CONTRACTS.md` §1, "The approval behaviour").
pub(crate) struct FirstRequest {
    /// The new row.
    pub request: ApprovalRequest,
    /// History action: `requested`, `autoApproved` or `autoDenied`.
    pub action: &'static str,
    /// Who made the first state: the user flow, or the policy rule.
    pub actor: Actor,
    /// The block page to answer, if any.
    pub block: Option<MessageKind>,
    /// The event to store.
    pub event_kind: &'static str,
}

/// See [`FirstRequest`].
///
/// `flow` is the user flow the call came through (issue 17); an external-tenant request that a
/// rule auto-approves is completed at once: `Continue` lets Entra create the account now.
pub(crate) fn first_request(
    key: &IdentityKey,
    evaluated: &RuleOutcome,
    claims: serde_json::Map<String, Value>,
    flow: Flow,
    route: &Routed,
    now: OffsetDateTime,
) -> FirstRequest {
    let (state, action, actor, block) = match evaluated {
        RuleOutcome::AutoApprove(rule) => (
            RequestState::Approved {
                directory_object_id: None,
                how: ProvisionedBy::UserFlow,
            },
            "autoApproved",
            Actor::policy(rule),
            None,
        ),
        RuleOutcome::AutoDeny(rule) => (
            RequestState::Denied {
                reason: format!("auto-denied by policy rule {rule}"),
            },
            "autoDenied",
            Actor::policy(rule),
            Some(MessageKind::AutoDenied),
        ),
        RuleOutcome::Manual => (
            RequestState::Pending,
            "requested",
            Actor::user_flow(),
            Some(MessageKind::Requested),
        ),
    };
    let decided = state != RequestState::Pending;
    FirstRequest {
        request: ApprovalRequest {
            id: Uuid::now_v7(),
            key: key.clone(),
            state,
            version: 1,
            created_at: now,
            updated_at: now,
            decided_by: decided.then(|| actor.clone()),
            attempts: 1,
            flow,
            completed_at: (flow == Flow::External
                && matches!(evaluated, RuleOutcome::AutoApprove(_)))
            .then_some(now),
            escalated_at: None,
            claims,
            // Served from the policy, never stored (routes::requests::served).
            grants: Vec::new(),
            route: route.name.clone(),
            approvals_required: route.approvals_required,
            approvals: Vec::new(),
        },
        action,
        actor,
        block,
        event_kind: if decided {
            "request.decided"
        } else {
            "request.created"
        },
    }
}

/// Where a new (or re-requested) request is routed (issue 14 §2): the first matching
/// `[[policy.routes]]` rule's name and `approvals_required`, or unrouted with one approval. The
/// one rule both stores apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routed {
    /// The route's name, `None` for unrouted.
    pub name: Option<String>,
    /// 1 or 2.
    pub approvals_required: u8,
}

impl Routed {
    /// The route of a sign-up with `claims` under `policy`.
    pub(crate) fn of(policy: &Policy, claims: &Claims) -> Routed {
        match policy.route_for(claims) {
            Some(r) => Routed {
                name: Some(r.name.clone()),
                approvals_required: r.approvals_required.clamp(1, 2),
            },
            None => Routed {
                name: None,
                approvals_required: 1,
            },
        }
    }

    /// Puts the route on a request that starts (again) as pending, with no approvals yet.
    pub(crate) fn apply_to(&self, r: &mut ApprovalRequest) {
        r.route = self.name.clone();
        r.approvals_required = self.approvals_required;
        r.approvals.clear();
    }
}

/// The history action and event kind of an applied decision: `approved`/`denied` and
/// `request.decided`, or, for the first of two approvals (the request still pending),
/// `approvedFirst` and [`EVENT_REQUEST_APPROVAL`]. The one rule both stores apply.
pub(crate) fn decision_record(
    decision: &Decision,
    after: &ApprovalRequest,
) -> (&'static str, &'static str) {
    match decision {
        Decision::Approve { .. } if after.state == RequestState::Pending => {
            ("approvedFirst", EVENT_REQUEST_APPROVAL)
        }
        Decision::Approve { .. } => ("approved", "request.decided"),
        Decision::Deny { .. } => ("denied", "request.decided"),
    }
}

/// The event kind of a recorded approval that does not decide the request yet: the first of
/// two (issue 14 §3). The request in it is still pending, with `approvals`.
pub const EVENT_REQUEST_APPROVAL: &str = "request.approval";

pub(crate) fn is_expired(r: &ApprovalRequest, policy: &Policy, now: OffsetDateTime) -> bool {
    expired(&r.state, r.created_at, policy, now)
}

pub(super) fn expired(
    state: &RequestState,
    created_at: OffsetDateTime,
    policy: &Policy,
    now: OffsetDateTime,
) -> bool {
    *state == RequestState::Pending
        && policy
            .expire_after_days
            .is_some_and(|d| now - created_at > time::Duration::days(i64::from(d)))
}

/// Denies every other pending request of `denied`'s canonical e-mail (the same person through
/// another identity provider), by `actor`, in the caller's transaction; returns their events.
pub(super) fn deny_same_person(
    tx: &Connection,
    denied: &ApprovalRequest,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE email = ?1 AND status = 'pending' AND id != ?2 ORDER BY created_at, id"
    );
    let others = tx
        .prepare_cached(&sql)?
        .query_map(
            params![denied.key.email, denied.id.to_string()],
            row_to_request,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::with_capacity(others.len());
    for other in others {
        let mut r = other?;
        let deny = Decision::Deny {
            reason: format!("denied with request {} (same e-mail address)", denied.id),
        };
        if r.apply(&deny, actor.clone(), now).is_err() {
            continue;
        }
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        upsert(tx, &r, &search_text(&claims))?;
        let mut detail = serde_json::to_value(&deny).unwrap_or_default();
        if let Value::Object(m) = &mut detail {
            m.insert("deniedWith".into(), json!(denied.id));
        }
        add_history(tx, &r, "denied", actor, detail)?;
        events.push(add_event(tx, "request.decided", &r)?);
    }
    Ok(events)
}

/// The write of [`SqliteStore::expire`].
pub(super) fn expire_job(
    id: Uuid,
    now: OffsetDateTime,
) -> impl FnOnce(&Connection) -> Result<Option<Event>, StoreError> + Send + 'static {
    move |tx: &Connection| {
        let Some(mut r) = get_by_id(tx, id)? else {
            return Ok(None);
        };
        if r.state != RequestState::Pending {
            return Ok(None);
        }
        r.state = RequestState::Expired;
        r.version += 1;
        r.updated_at = now;
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        upsert(tx, &r, &search_text(&claims))?;
        add_history(tx, &r, "expired", &Actor::policy("expiry"), json!({}))?;
        Ok(Some(add_event(tx, "request.decided", &r)?))
    }
}

/// The write of [`SqliteStore::request_approval`]: everything that does not need the database is done
/// here, by the caller; the returned closure runs on the writer thread.
pub(super) fn request_approval_job(
    claims: &Claims,
    flow: Flow,
    policy: &Policy,
    now: OffsetDateTime,
    retry_window: time::Duration,
    tombstones: std::sync::Arc<super::privacy::Tombstones>,
) -> impl FnOnce(&Connection) -> Result<RequestApprovalOutcome, StoreError> + Send + 'static {
    let key = IdentityKey::of(claims);
    let claims_json = claims.to_json();
    let search = search_text(claims);
    // The rules only read the claims: evaluate them before taking the writer.
    let evaluated = policy.evaluate(claims);
    let routed = Routed::of(policy, claims);
    let policy = policy.clone();
    move |tx: &Connection| {
        let policy = &policy;
        if let Some(mut r) = get_by_key(tx, &key)? {
            // The same person was denied under another identity provider (or by a denial that
            // this open request predates): it stays denied, through expiry too.
            if matches!(r.state, RequestState::Pending | RequestState::Expired)
                && (denied_email(tx, &key.email)? || tombstones.contains(&key.email)?)
            {
                return Ok(RequestApprovalOutcome {
                    block: Some(MessageKind::Denied),
                    event: None,
                });
            }
            if is_expired(&r, policy, now) {
                r.state = RequestState::Expired;
                r.version += 1;
                r.updated_at = now;
                upsert(tx, &r, &search)?;
                add_history(tx, &r, "expired", &Actor::policy("expiry"), json!({}))?;
            }
            return match r.state.clone() {
                RequestState::Pending => {
                    let replay = r.claims == claims_json && now - r.updated_at <= retry_window;
                    if replay {
                        return Ok(RequestApprovalOutcome {
                            block: Some(MessageKind::Requested),
                            event: None,
                        });
                    }
                    r.attempts += 1;
                    r.updated_at = now;
                    r.version += 1;
                    upsert(tx, &r, &search)?;
                    add_history(
                        tx,
                        &r,
                        "attempted",
                        &Actor::user_flow(),
                        json!({"answer": policy.code(MessageKind::Pending), "claims": claims_json}),
                    )?;
                    Ok(RequestApprovalOutcome {
                        block: Some(MessageKind::Pending),
                        event: None,
                    })
                }
                RequestState::Expired if policy.expired == ExpiredBehaviour::AllowReRequest => {
                    r.state = RequestState::Pending;
                    r.claims = claims_json.clone();
                    r.attempts += 1;
                    r.created_at = now;
                    r.updated_at = now;
                    r.version += 1;
                    r.decided_by = None;
                    routed.apply_to(&mut r);
                    upsert(tx, &r, &search)?;
                    add_history(
                        tx,
                        &r,
                        "requested",
                        &Actor::user_flow(),
                        json!({"reRequest": true}),
                    )?;
                    let event = add_event(tx, "request.created", &r)?;
                    Ok(RequestApprovalOutcome {
                        block: Some(MessageKind::Requested),
                        event: Some(event),
                    })
                }
                state => Ok(RequestApprovalOutcome {
                    block: check_status_block(&state, policy),
                    event: None,
                }),
            };
        }
        if denied_email(tx, &key.email)? || tombstones.contains(&key.email)? {
            return Ok(RequestApprovalOutcome {
                block: Some(MessageKind::Denied),
                event: None,
            });
        }
        let FirstRequest {
            request: r,
            action,
            actor,
            block,
            event_kind: kind,
        } = first_request(&key, &evaluated, claims_json.clone(), flow, &routed, now);
        upsert(tx, &r, &search)?;
        add_history(tx, &r, action, &actor, json!({}))?;
        let event = add_event(tx, kind, &r)?;
        Ok(RequestApprovalOutcome {
            block,
            event: Some(event),
        })
    }
}

impl SqliteStore {
    /// Marks a pending request expired. Returns the event, or `None` if it was no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        self.write(expire_job(id, now))
    }

    /// [`SqliteStore::expire`] for async callers: queued to the writer thread and awaited.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn expire_async(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, StoreError> {
        self.write_async(expire_job(id, now)).await
    }

    /// The "request approval" decision (seed `002_*`), in one transaction: store a new pending
    /// request, or apply the policy, or answer for the request already stored under the same
    /// identity key. An identical call within `retry_window` of the stored one is Entra's retry
    /// and gets the first call's answer (`REQUESTED`), so retries and bursts create one request.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn request_approval(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        if IdentityKey::try_of(claims).is_err() {
            return Ok(RequestApprovalOutcome::email_refused());
        }
        self.write(request_approval_job(
            claims,
            Flow::Workforce,
            policy,
            now,
            retry_window,
            self.tombstones.clone(),
        ))
    }

    /// [`SqliteStore::request_approval`] for async callers: the write is queued to the writer thread
    /// and awaited without holding a blocking thread, so a burst of connector calls costs no
    /// thread hand-off per call. Same transaction, same answers.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn request_approval_async(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        self.request_approval_flow_async(claims, Flow::Workforce, policy, now, retry_window)
            .await
    }

    /// One request by id.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError> {
        self.read(|c| get_by_id(c, id))?
            .ok_or(StoreError::NotFound(id))
    }

    /// Applies an approver's decision with optimistic concurrency and idempotency.
    ///
    /// - `idempotency_key` seen before with the same body → the stored answer, nothing changes;
    ///   with a different body → [`StoreError::IdempotencyKeyReused`].
    /// - `if_match` ≠ current version → [`StoreError::VersionMismatch`].
    /// - not pending → [`StoreError::AlreadyDecided`].
    ///
    /// Returns the request after the decision and, when it changed, the event to publish. A
    /// denial also denies the person's other pending requests ([`SqliteStore::decide_all`]); their
    /// events are stored, but only [`SqliteStore::decide_all`] returns them.
    pub fn decide(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Option<Event>), StoreError> {
        let (r, events) = self.decide_all(id, decision, actor, if_match, idempotency_key, now)?;
        Ok((r, events.into_iter().next()))
    }

    /// [`SqliteStore::decide`], returning every event to publish: the decided request's first, then,
    /// for a denial, one per other pending request of the same canonical e-mail (the same
    /// person through another identity provider), which the same transaction denies too, by the
    /// same actor, with the reason "denied with request <id> (same e-mail address)" and a
    /// `denied` history entry whose detail names `deniedWith` (issue 10 §6).
    ///
    /// Errors: as [`SqliteStore::decide`].
    pub fn decide_all(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError> {
        let (decision, actor) = &stored_decision(decision, actor);
        let fingerprint = format!("{id}:{}", to_json(decision)?);
        self.write(decide_all_job(
            id,
            fingerprint,
            decision,
            actor,
            if_match,
            idempotency_key,
            now,
        ))
    }

    /// [`SqliteStore::decide_all`] for async callers: the write is queued to the writer thread
    /// (group commit) and awaited without holding a blocking thread.
    ///
    /// Errors: as [`SqliteStore::decide`].
    pub async fn decide_all_async(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError> {
        let (decision, actor) = &stored_decision(decision, actor);
        let fingerprint = format!("{id}:{}", to_json(decision)?);
        self.write_async(decide_all_job(
            id,
            fingerprint,
            decision,
            actor,
            if_match,
            idempotency_key,
            now,
        ))
        .await
    }

    /// The audit trail of a request, oldest first.
    ///
    /// Errors: [`StoreError::NotFound`] when the request does not exist.
    pub fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(|c| {
            if get_by_id(c, id)?.is_none() {
                return Err(StoreError::NotFound(id));
            }
            super::export::history_of(c, id)
        })
    }
}

/// The write of [`SqliteStore::decide_all`]: the decision's checks and changes in the writer's
/// transaction. `fingerprint` is `<id>:<decision as JSON>`, what an idempotency key is bound to.
fn decide_all_job(
    id: Uuid,
    fingerprint: String,
    decision: &Decision,
    actor: &Actor,
    if_match: Option<u64>,
    idempotency_key: Option<&str>,
    now: OffsetDateTime,
) -> impl FnOnce(&Connection) -> Result<(ApprovalRequest, Vec<Event>), StoreError> + Send + 'static
{
    let decision = decision.clone();
    let actor = actor.clone();
    let idempotency_key = idempotency_key.map(str::to_owned);
    move |tx: &Connection| {
        let (decision, actor) = (&decision, &actor);
        let idempotency_key = idempotency_key.as_deref();
        if let Some(key) = idempotency_key {
            let mut stmt = tx.prepare_cached(
                "SELECT fingerprint, response_json FROM idempotency WHERE key = ?1",
            )?;
            let seen: Option<(String, String)> = stmt
                .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((fp, response)) = seen {
                if fp != fingerprint {
                    return Err(StoreError::IdempotencyKeyReused);
                }
                return Ok((from_json(&response)?, Vec::new()));
            }
        }
        let mut r = get_by_id(tx, id)?.ok_or(StoreError::NotFound(id))?;
        if let Some(v) = if_match
            && v != r.version
        {
            // A decision that already won with this exact body is reported as a conflict
            // too: the caller must not assume it was theirs without an idempotency key.
            if r.state == RequestState::Pending {
                return Err(StoreError::VersionMismatch {
                    current: r.version,
                    request: Box::new(r),
                });
            }
            return Err(StoreError::AlreadyDecided {
                request: Box::new(r),
            });
        }
        match r.apply(decision, actor.clone(), now) {
            Ok(()) => {}
            Err(TransitionError::NotPending(_)) => {
                return Err(StoreError::AlreadyDecided {
                    request: Box::new(r),
                });
            }
            Err(TransitionError::SameApprover) => {
                return Err(StoreError::SecondApproverRequired);
            }
        }
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        upsert(tx, &r, &search_text(&claims))?;
        let (action, kind) = decision_record(decision, &r);
        add_history(
            tx,
            &r,
            action,
            actor,
            serde_json::to_value(decision).unwrap_or_default(),
        )?;
        let mut events = vec![add_event(tx, kind, &r)?];
        if matches!(decision, Decision::Deny { .. }) {
            events.extend(deny_same_person(tx, &r, actor, now)?);
        }
        if let Some(key) = idempotency_key {
            tx.prepare_cached(
                "INSERT INTO idempotency (key, request_id, fingerprint, response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![key, id.to_string(), fingerprint, to_json(&r)?, ts(now)])?;
        }
        Ok((r, events))
    }
}
