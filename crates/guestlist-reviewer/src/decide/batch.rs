//! Several federated approvals provisioned together (`docs/CONTRACTS.md` §3, `$batch`):
//! `mail in (…)` look-ups and `POST /users` in `$batch` requests, relying on the directory's
//! own uniqueness of identities and `userPrincipalName` (phase 2 of [`Inner::drain`]).

use std::collections::HashMap;

use guestlist_core::model::ProvisionedBy;
use guestlist_core::plan::{FILTER_IN_MAX, ProvisioningPlan, lookup_by_mails};
use guestlist_graph::{BatchItem, GraphError};
use serde_json::Value;

use super::Stop;
use crate::Inner;
use crate::cache::OutboxRow;
use crate::types::{DecisionKind, OutboxState};

impl Inner {
    /// Phase 2 of [`Inner::drain`]: two or more claimed federated approvals with no write
    /// started are provisioned together, in as few Graph round trips as the directory allows:
    ///
    /// 1. one look-up per [`FILTER_IN_MAX`] people, `GET /users?$filter=mail in (…)`, all in
    ///    `$batch` requests (100 people: 7 look-ups, one round trip). A person whose e-mail
    ///    already has an account gets that account (reused, nothing created).
    /// 2. `POST /users` for the others in `$batch` requests (20 per round trip), with
    ///    `write_started` saved first. No separate identity look-up: the directory itself
    ///    refuses a second user with the same `identities` (issuer, issuerAssignedId) or
    ///    `userPrincipalName` ("The combination of issuer and issuerAssignedId must be unique
    ///    within the organization", Graph `objectIdentity`), atomically, which a look-up cannot
    ///    promise. Such a refusal (400 "… already exists") means nothing was written: the row goes
    ///    back to `write_started = false` and the one-by-one path looks the account up by
    ///    identity and mail and reuses it.
    ///
    /// 100 approvals: 1 + 5 round trips instead of 2 × 10 look-ups + 5. Rows this cannot settle
    /// (a failed look-up, a lost batch response, a throttled item) stay claimed for the
    /// one-by-one path, whose look-ups find anything a lost response created.
    pub(super) async fn provision_batch(&self, rows: &mut [OutboxRow]) -> Result<(), Stop> {
        let mut todo: Vec<(usize, ProvisioningPlan, String)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if r.state == OutboxState::Claimed
                && r.kind == DecisionKind::Approve
                && !super::first_of_two(r)
                && !r.write_started
                && let Ok(p) = self.plan_of(r)
                && p.kind == ProvisionedBy::UserCreated
                && let Some(mail) = p.writes[0]
                    .body
                    .as_ref()
                    .and_then(|b| b.get("mail"))
                    .and_then(Value::as_str)
            {
                let mail = mail.trim().to_lowercase();
                todo.push((i, p, mail));
            }
        }
        if todo.len() < 2 {
            return Ok(());
        }
        let settings = self.settings();
        let Ok(token) = self.auth.graph_token(&settings).await else {
            return Ok(());
        };
        let graph = self.graph_client();

        // 1. Look-ups by e-mail, FILTER_IN_MAX addresses each.
        let mut mails: Vec<&str> = todo.iter().map(|(_, _, m)| m.as_str()).collect();
        mails.sort_unstable();
        mails.dedup();
        let chunks: Vec<&[&str]> = mails.chunks(FILTER_IN_MAX).collect();
        let lookups = chunks
            .iter()
            .enumerate()
            .map(|(k, chunk)| {
                let l = lookup_by_mails(chunk);
                BatchItem {
                    id: k.to_string(),
                    method: l.method,
                    url: l.path,
                    body: None,
                    depends_on: vec![],
                }
            })
            .collect();
        let Ok(results) = graph.batch(&token, lookups).await else {
            return Ok(());
        };
        let mut looked_up: HashMap<String, Option<String>> = HashMap::new();
        for r in results.iter().filter(|r| r.is_success()) {
            let Some(chunk) = r.id.parse::<usize>().ok().and_then(|k| chunks.get(k)) else {
                continue;
            };
            for m in chunk.iter() {
                looked_up.entry((*m).to_owned()).or_insert(None);
            }
            for u in r.body["value"].as_array().into_iter().flatten() {
                if let (Some(m), Some(id)) = (
                    u.get("mail").and_then(Value::as_str),
                    u.get("id").and_then(Value::as_str),
                ) && let Some(slot) = looked_up.get_mut(&m.trim().to_lowercase())
                    && slot.is_none()
                {
                    *slot = Some(id.to_owned());
                }
            }
        }
        let mut create = Vec::new();
        for (i, p, mail) in &todo {
            match looked_up.get(mail) {
                None => {} // its look-up failed: settled one by one
                Some(Some(id)) => {
                    self.found(&mut rows[*i], p.kind, id.clone())?;
                }
                Some(None) => create.push((*i, p.clone())),
            }
        }
        if create.is_empty() {
            return Ok(());
        }

        // 2. Create the accounts nobody has.
        self.set_online(true);
        let mut items = Vec::new();
        for (n, (i, p)) in create.iter().enumerate() {
            rows[*i].write_started = true;
            self.save(&mut rows[*i])?;
            let w = &p.writes[0];
            items.push(BatchItem {
                id: n.to_string(),
                method: w.method.clone(),
                url: w.path.clone(),
                body: w.body.clone(),
                depends_on: vec![],
            });
        }
        let results = match graph.batch(&token, items).await {
            Ok(r) => r,
            Err(_) => return Ok(()), // look-ups on the one-by-one path find what was created
        };
        if self.faults.crash_after_graph_write {
            self.simulated_crash("graph_write state=Claimed");
            return Err(Stop::Crash);
        }
        for r in results {
            let Ok(n) = r.id.parse::<usize>() else {
                continue;
            };
            let Some((i, _)) = create.get(n) else {
                continue;
            };
            let row = &mut rows[*i];
            if r.is_success() {
                if let Some(id) = r.body.get("id").and_then(Value::as_str) {
                    row.directory_object_id = Some(id.to_owned());
                    row.how = Some(ProvisionedBy::UserCreated);
                    row.state = OutboxState::Provisioned;
                    row.last_error = None;
                    self.save(row)?;
                }
            } else if let Some(e) = r.error.clone()
                && is_uniqueness_conflict(&e)
            {
                // Nothing was written: an account with this identity or UPN exists. The
                // one-by-one path finds it by identity or mail and reuses it.
                row.write_started = false;
                self.save(row)?;
            } else if let Some(e) = r.error.clone()
                && !(e.status == 429 || e.status >= 500)
            {
                let _ = self.finish(
                    row,
                    OutboxState::Failed,
                    Some(guestlist_graph::Error::Graph(e).into()),
                );
            } else {
                let e = r.error.clone().unwrap_or_else(|| GraphError {
                    status: r.status,
                    code: "UnknownError".into(),
                    message: "batch item failed".into(),
                    request_id: None,
                    date: None,
                });
                row.last_error = Some(guestlist_graph::Error::Graph(e).into());
                self.save(row)?;
            }
        }
        Ok(())
    }
}

/// Graph's refusal of a second object with the same unique property: HTTP 400
/// `Request_BadRequest`, "Another object with the same value for property {name} already
/// exists." (`userPrincipalName`, `identities`, `proxyAddresses`, …). Nothing was written.
fn is_uniqueness_conflict(e: &GraphError) -> bool {
    e.status == 400 && e.message.contains("already exists")
}
