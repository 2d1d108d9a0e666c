//! Queue sync ([`Reviewer::sync`]): sends queued decisions, then brings the cache up to date
//! with the approval API, incrementally (`GET /api/requests?since=<mark>`) or with a full
//! re-list of pending requests (`docs/CONTRACTS.md`, the requests listing).

use std::time::Instant;

use guestlist_core::model::{ApprovalRequest, RequestState};
use time::OffsetDateTime;

use crate::cache::rfc3339;
use crate::{LAST_SYNC_KEY, Reviewer, ReviewerError, SyncReport, api, codes};

/// Meta key of the change mark of the last sync: `<api base URL> <changeSeq>`.
const SYNC_MARK_KEY: &str = "sync_mark";
/// Meta key of the time (RFC 3339) of the last full sync.
const FULL_SYNC_AT_KEY: &str = "full_sync_at";
/// A sync is a full re-list again once the last full one is this old.
const FULL_RECONCILE_AFTER: time::Duration = time::Duration::minutes(15);

/// What a sync fetched: requests, pages, and the server's change mark (`None`: the server has
/// no change sequence).
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub(crate) items: Vec<ApprovalRequest>,
    pub(crate) pages: u32,
    pub(crate) mark: Option<u64>,
    /// Ids of requests erased on the server since the mark (`since=` pages only).
    pub(crate) erased: Vec<String>,
}

impl Reviewer {
    /// Sends queued decisions (best effort), then brings the cache up to date with the server:
    ///
    /// - **incremental** when the cache holds a change mark from an earlier sync against the
    ///   same API (meta `sync_mark`): `GET /api/requests?since=<mark>` (cursor pages of 500)
    ///   lists only the requests created or changed since, of any status; pending ones are
    ///   written, the others (decided or expired elsewhere) removed, and those the page lists as
    ///   `erased` dropped with their unsent decisions failed
    ///   ([`Cache::erase_requests`](crate::cache::Cache::erase_requests));
    /// - **full** otherwise, and when the last full sync is older than
    ///   15 minutes, and when the server's current mark is below ours (its
    ///   database was reset or replaced): every pending request from
    ///   `GET /api/requests?status=pending`; new and changed requests are written, unchanged ones
    ///   skipped, cached requests the server no longer lists as pending removed. The mark kept
    ///   is the one of the first page, so a change made while paging is fetched again next time.
    ///
    /// Purges old finished outbox items.
    ///
    /// Errors: `network.offline` (cache untouched), `auth.not_signed_in`, `auth.forbidden`,
    /// `storage.error`.
    pub async fn sync(&self) -> Result<SyncReport, ReviewerError> {
        let _g = self.inner.sync_lock.lock().await;
        self.inner.rt(|r| r.syncing = true);
        let res = self.sync_inner().await;
        self.inner.rt(|r| {
            r.syncing = false;
            match &res {
                Ok(_) => r.last_error = None,
                Err(e) => {
                    if e.is_offline() {
                        r.online = false;
                    }
                    r.last_error = Some(e.clone());
                }
            }
        });
        res
    }

    async fn sync_inner(&self) -> Result<SyncReport, ReviewerError> {
        let start = Instant::now();
        if let Err(e) = self.inner.drain(None).await
            && e.code == codes::SIMULATED_CRASH
        {
            return Err(e);
        }
        let api_base = self.inner.settings().api_base_url;
        let now = OffsetDateTime::now_utc();
        if let Some(mark) = self.sync_mark(&api_base, now)?
            && let Some(changes) = self.fetch(Some(mark)).await?
        {
            return self.apply_sync(changes, false, api_base, start).await;
        }
        let all = self.fetch(None).await?.unwrap_or_default();
        self.apply_sync(all, true, api_base, start).await
    }

    /// The change mark to sync from, or `None` when a full sync is due: no mark, a mark from
    /// another API base URL, or a last full sync older than `FULL_RECONCILE_AFTER` (so that
    /// anything an incremental sync could miss — e.g. a server database replaced by one that
    /// already grew past our mark — cannot linger).
    fn sync_mark(&self, api_base: &str, now: OffsetDateTime) -> Result<Option<u64>, ReviewerError> {
        let cache = &self.inner.cache;
        let Some(mark) = cache.meta(SYNC_MARK_KEY)? else {
            return Ok(None);
        };
        let Some((api, seq)) = mark.rsplit_once(' ') else {
            return Ok(None);
        };
        let Ok(seq) = seq.parse::<u64>() else {
            return Ok(None);
        };
        let full_at = cache.meta(FULL_SYNC_AT_KEY)?.and_then(|t| {
            OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        });
        let recent = full_at.is_some_and(|t| now - t < FULL_RECONCILE_AFTER && t <= now);
        Ok((api == api_base && recent).then_some(seq))
    }

    /// Pages through `GET /api/requests` (cursor pages of [`api::PAGE_LIMIT`]):
    ///
    /// - `Some(mark)`: `?since=<mark>`, every request changed since, of any status; the mark kept
    ///   is the last page's. `None` when the server cannot answer incrementally (no
    ///   `changeSeq`: an older server; or a current mark below ours: its database was reset), so
    ///   a full sync must run.
    /// - `None`: `?status=pending`, every pending request; the mark kept is the first page's
    ///   (see [`Reviewer::sync`]). Always `Some`.
    async fn fetch(&self, since: Option<u64>) -> Result<Option<Fetched>, ReviewerError> {
        let mut out = Fetched::default();
        let mut cursor: Option<String> = None;
        loop {
            let c = cursor.clone();
            let page = self
                .inner
                .with_api(|api, t| {
                    let c = c.clone();
                    async move {
                        match since {
                            Some(s) => api.changes_page(&t, s, c.as_deref(), api::PAGE_LIMIT).await,
                            None => api.pending_page(&t, c.as_deref(), api::PAGE_LIMIT).await,
                        }
                    }
                })
                .await?;
            match since {
                Some(s) => match page.change_seq {
                    Some(seq) if seq >= s => out.mark = Some(seq),
                    _ => return Ok(None),
                },
                None if out.pages == 0 => out.mark = page.change_seq,
                None => {}
            }
            out.pages += 1;
            out.erased
                .extend(page.erased.iter().map(|id| id.to_string()));
            out.items.extend(
                page.items
                    .into_iter()
                    .filter(|r| since.is_some() || r.state == RequestState::Pending),
            );
            match page.next_cursor {
                Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
                _ => break,
            }
        }
        Ok(Some(out))
    }

    /// Writes what a sync fetched into the cache (one blocking task) and keeps the mark.
    /// `full`: `fetched.items` are all pending requests (others are removed from the cache);
    /// otherwise they are the changes since the mark (pending ones written, the rest removed).
    pub(crate) async fn apply_sync(
        &self,
        fetched: Fetched,
        full: bool,
        api_base: String,
        start: Instant,
    ) -> Result<SyncReport, ReviewerError> {
        let Fetched {
            items,
            pages,
            mark,
            erased,
        } = fetched;
        let count = items.len() as u64;
        let inner = self.inner.clone();
        let (added, updated, removed, pending) = tokio::task::spawn_blocking(move || {
            let (pending, done): (Vec<ApprovalRequest>, Vec<ApprovalRequest>) = items
                .into_iter()
                .partition(|r| r.state == RequestState::Pending);
            let (a, u, r) = inner.cache.store_pending(&pending, full)?;
            let gone: Vec<String> = done.iter().map(|d| d.id.to_string()).collect();
            let r = r + inner.cache.remove_requests(&gone)?;
            let now = OffsetDateTime::now_utc();
            let r = r + inner.cache.erase_requests(&erased, now)?.requests;
            let now_text = rfc3339(now);
            match mark {
                Some(m) => inner
                    .cache
                    .set_meta(SYNC_MARK_KEY, Some(&format!("{api_base} {m}")))?,
                None => inner.cache.set_meta(SYNC_MARK_KEY, None)?,
            }
            if full {
                inner.cache.set_meta(FULL_SYNC_AT_KEY, Some(&now_text))?;
            }
            inner.cache.set_meta(LAST_SYNC_KEY, Some(&now_text))?;
            inner
                .cache
                .purge(inner.settings().purge_decided_after_days, now)?;
            Ok::<_, ReviewerError>((a, u, r, inner.cache.pending_count()?))
        })
        .await
        .map_err(ReviewerError::storage)??;
        Ok(SyncReport {
            fetched: count,
            added,
            updated,
            removed,
            pages,
            duration_ms: start.elapsed().as_millis() as u64,
            pending,
        })
    }
}
