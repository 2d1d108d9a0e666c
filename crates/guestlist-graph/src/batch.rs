//! JSON batching (`POST /$batch`, CONTRACTS.md §3,
//! <https://learn.microsoft.com/graph/json-batching>).
//!
//! - At most [`MAX_BATCH`] (20) requests per batch: larger sets are split, keeping each group of
//!   items linked by `dependsOn` in one batch (a group above 20 is refused).
//! - The batch itself answers 200 even when items fail: every item gets its own
//!   [`BatchResult::status`].
//! - Items are throttled one by one: a 429/503 item (and a 424 "failed dependency" item whose
//!   dependency was throttled) is sent again in a later batch after the longest wait among
//!   them ([`crate::GraphConfig::backoff`]: its `Retry-After` in either form, jittered and
//!   capped), at most `max_attempts` times in all; an item whose `Retry-After` is over the cap
//!   keeps its throttling answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Error, GraphClient, GraphError, encode_path, is_throttle};

/// Graph's limit of requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    /// Caller-chosen id, unique within the call (Graph echoes it back).
    pub id: String,
    /// `GET`, `POST`, `PATCH`, `DELETE`.
    pub method: String,
    /// Path relative to the version root (`/users`, `/users?$filter=…`).
    pub url: String,
    /// The JSON body, if any (sent with `Content-Type: application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Ids of items that must run before this one (ordering only; a failed dependency makes
    /// this item fail with 424).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// The outcome of one batch item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// The item's id.
    pub id: String,
    /// The item's HTTP status.
    pub status: u16,
    /// The item's JSON body (`Value::Null` when none).
    pub body: Value,
    /// The error, for statuses ≥ 400.
    pub error: Option<GraphError>,
    /// How many batch requests carried this item (1 unless throttled).
    pub attempts: u32,
}

impl BatchResult {
    /// `true` for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Groups items linked by `dependsOn` (union-find over indices), in input order.
fn groups(items: &[BatchItem]) -> Result<Vec<Vec<usize>>, Error> {
    let index: BTreeMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.as_str(), i))
        .collect();
    if index.len() != items.len() {
        return Err(Error::Invalid("duplicate batch item ids".into()));
    }
    let mut parent: Vec<usize> = (0..items.len()).collect();
    fn find(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        p[i] = r;
        r
    }
    for (i, it) in items.iter().enumerate() {
        for d in &it.depends_on {
            let j = *index
                .get(d.as_str())
                .ok_or_else(|| Error::Invalid(format!("item {} depends on unknown {d}", it.id)))?;
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            parent[a] = b;
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut order = Vec::new();
    for i in 0..items.len() {
        let r = find(&mut parent, i);
        if !by_root.contains_key(&r) {
            order.push(r);
        }
        by_root.entry(r).or_default().push(i);
    }
    let out: Vec<Vec<usize>> = order
        .into_iter()
        .filter_map(|r| by_root.remove(&r))
        .collect();
    if let Some(g) = out.iter().find(|g| g.len() > MAX_BATCH) {
        return Err(Error::Invalid(format!(
            "a dependsOn group of {} requests exceeds the {MAX_BATCH}-request batch limit",
            g.len()
        )));
    }
    Ok(out)
}

/// Packs groups into chunks of at most [`MAX_BATCH`] items.
fn chunks(groups: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    for g in groups {
        match out.last_mut() {
            Some(last) if last.len() + g.len() <= MAX_BATCH => last.extend(g),
            _ => out.push(g),
        }
    }
    out
}

pub(crate) async fn run(
    client: &GraphClient,
    token: &str,
    items: Vec<BatchItem>,
) -> Result<Vec<BatchResult>, Error> {
    let mut results: Vec<Option<BatchResult>> = vec![None; items.len()];
    let backoff = client.config.backoff();
    let mut attempts = vec![0u32; items.len()];
    let mut todo: Vec<usize> = (0..items.len()).collect();
    groups(&items)?;
    loop {
        // Re-group what is left; dependencies on items already done are dropped (done = ran).
        let pending: BTreeSet<usize> = todo.iter().copied().collect();
        let subset: Vec<BatchItem> = todo
            .iter()
            .map(|&i| {
                let mut it = items[i].clone();
                it.depends_on.retain(|d| {
                    items
                        .iter()
                        .position(|x| &x.id == d)
                        .is_some_and(|j| pending.contains(&j))
                });
                it
            })
            .collect();
        let mut retry = Vec::new();
        let mut wait = Duration::ZERO;
        let mut give_up = BTreeSet::new();
        for chunk in chunks(groups(&subset)?) {
            let requests: Vec<Value> = chunk
                .iter()
                .map(|&k| {
                    let it = &subset[k];
                    let mut r =
                        json!({"id": it.id, "method": it.method, "url": encode_path(&it.url)});
                    if let Some(b) = &it.body {
                        r["body"] = b.clone();
                        r["headers"] = json!({"Content-Type": "application/json"});
                    }
                    if !it.depends_on.is_empty() {
                        r["dependsOn"] = json!(it.depends_on);
                    }
                    r
                })
                .collect();
            let answer = client
                .post_batch(token, &json!({ "requests": requests }))
                .await?;
            let responses = answer
                .get("responses")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Decode("a $batch answer without `responses`".into()))?;
            let mut throttled_ids = BTreeSet::new();
            let mut chunk_results = Vec::new();
            for r in responses {
                let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                let Some(&k) = chunk.iter().find(|&&k| subset[k].id == id) else {
                    return Err(Error::Decode(format!(
                        "$batch answered unknown item id {id:?}"
                    )));
                };
                let i = todo[k];
                let status = r
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(|| Error::Decode(format!("$batch item {id} without status")))?;
                let headers = r.get("headers");
                let header = |name: &str| {
                    headers
                        .and_then(|h| h.as_object())
                        .and_then(|h| {
                            h.iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v)
                        })
                        .and_then(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .or_else(|| v.as_u64().map(|n| n.to_string()))
                        })
                };
                let body = r.get("body").cloned().unwrap_or(Value::Null);
                attempts[i] += 1;
                if is_throttle(status) {
                    throttled_ids.insert(id.to_owned());
                    let ra = header("Retry-After")
                        .as_deref()
                        .and_then(guestlist_core::retry::retry_after);
                    // `None`: this item's attempts are spent or its Retry-After is over the cap.
                    match backoff.delay(attempts[i], ra) {
                        Some(d) => wait = wait.max(d),
                        None => {
                            give_up.insert(i);
                        }
                    }
                }
                chunk_results.push((
                    i,
                    id.to_owned(),
                    status,
                    body,
                    header("request-id"),
                    header("Date"),
                ));
            }
            for (i, id, status, body, request_id, date) in chunk_results {
                let dep_throttled = status == 424
                    && items[i]
                        .depends_on
                        .iter()
                        .any(|d| throttled_ids.contains(d));
                let error = (status >= 400).then(|| {
                    let raw = serde_json::to_vec(&body).unwrap_or_default();
                    GraphError::from_body(status, &raw, request_id, date)
                });
                let can_retry = attempts[i] < client.config.max_attempts && !give_up.contains(&i);
                if (is_throttle(status) || dep_throttled) && can_retry {
                    retry.push(i);
                }
                results[i] = Some(BatchResult {
                    id,
                    status,
                    body,
                    error,
                    attempts: attempts[i],
                });
            }
            for &k in &chunk {
                let i = todo[k];
                if results[i].is_none() {
                    return Err(Error::Decode(format!(
                        "$batch did not answer item {}",
                        items[i].id
                    )));
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        tracing::info!(
            items = retry.len(),
            ?wait,
            "$batch items throttled; waiting Retry-After"
        );
        tokio::time::sleep(wait).await;
        retry.sort_unstable();
        todo = retry;
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Decode("a $batch item got no answer".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, deps: &[&str]) -> BatchItem {
        BatchItem {
            id: id.into(),
            method: "GET".into(),
            url: "/users".into(),
            body: None,
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn splits_at_twenty_and_keeps_dependency_groups_together() {
        let mut items: Vec<BatchItem> = (0..19).map(|i| item(&format!("a{i}"), &[])).collect();
        items.push(item("b1", &[]));
        items.push(item("b2", &["b1"]));
        let c = chunks(groups(&items).unwrap());
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].len(),
            19,
            "b1 and b2 do not fit the first batch together"
        );
        assert_eq!(c[1], vec![19, 20]);
        let many: Vec<BatchItem> = (0..45).map(|i| item(&format!("x{i}"), &[])).collect();
        let sizes: Vec<usize> = chunks(groups(&many).unwrap())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [20, 20, 5]);
    }

    #[test]
    fn refuses_unknown_dependencies_duplicates_and_huge_groups() {
        assert!(groups(&[item("a", &["zz"])]).is_err());
        assert!(groups(&[item("a", &[]), item("a", &[])]).is_err());
        let chain: Vec<BatchItem> = (0..21)
            .map(|i| {
                let prev = format!("c{}", i.max(1) - 1);
                if i == 0 {
                    item("c0", &[])
                } else {
                    item(&format!("c{i}"), &[prev.as_str()])
                }
            })
            .collect();
        assert!(matches!(groups(&chain), Err(Error::Invalid(_))));
    }
}
