//! `GET /api/audit?since=&until=&format=ndjson|csv` (issue 12 "Audit export"): one record per
//! decision (`history`) and per privacy operation or reopen (`audit_log`), for an Admin or an
//! Auditor, streamed in constant memory.
//!
//! The body is produced chunk by chunk: each chunk is one page of at most [`AUDIT_PAGE`] records
//! from the store ([`crate::store::Backend::audit_export_page`], a keyset page that resumes at
//! its [`ExportCursor`]), rendered and handed to hyper, which asks for
//! the next only when it has sent the previous one (a slow reader slows the export, it does not
//! make the server buffer it). An error after the first byte ends the body early (the client
//! sees a truncated transfer, never a complete-looking one) and is logged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::code::Code;
use guestlist_core::model::ErrorBody;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppQuery, AuditReader};
use crate::metrics::Metrics;
use crate::store::export::{AUDIT_PAGE, AuditExportRecord};
use crate::store::{ExportCursor, Store};

/// Query of `GET /api/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only records at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only records before this time (RFC 3339).
    pub until: Option<String>,
    /// `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 10] = [
    "at",
    "source",
    "seq",
    "requestId",
    "action",
    "actorKind",
    "actorOid",
    "actorUpn",
    "actorClient",
    "directoryObjectId",
];

/// A CSV cell that a spreadsheet would not run as a formula: a cell starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP "CSV injection").
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

fn render(records: &[AuditExportRecord], format: Format, header: bool) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(records.len() * 320);
    match format {
        Format::Ndjson => {
            for r in records {
                serde_json::to_writer(&mut out, r)?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            if header {
                w.write_record(CSV_HEADER)?;
            }
            for r in records {
                let at = r.at.format(&Rfc3339).unwrap_or_default();
                let source = match r.source {
                    crate::store::export::AuditSource::Decision => "decision",
                    crate::store::export::AuditSource::Operation => "operation",
                };
                let request_id = r.request_id.map(|u| u.to_string()).unwrap_or_default();
                let seq = r.seq.to_string();
                let cells = [
                    at.as_str(),
                    source,
                    seq.as_str(),
                    request_id.as_str(),
                    r.action.as_str(),
                    r.actor_kind.as_str(),
                    r.actor_oid.as_str(),
                    r.actor_upn.as_deref().unwrap_or_default(),
                    r.actor_client.as_deref().unwrap_or_default(),
                    r.directory_object_id.as_deref().unwrap_or_default(),
                ];
                w.write_record(cells.iter().map(|c| csv_cell(c).into_owned()))?;
            }
            w.flush()?;
        }
    }
    Ok(out)
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                ApiError::bad_request(
                    Code::AuditBadTime,
                    format!("{name} must be an RFC 3339 time such as 2026-01-31T00:00:00Z"),
                )
            })
        })
        .transpose()
}

/// State of the body stream: where the next page starts (`None`: the export is complete), and
/// whether anything was sent yet.
struct Streaming {
    store: Store,
    /// Counts the store pages read ([`Metrics::audit_pages_read`]).
    metrics: Arc<Metrics>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    next: Option<ExportCursor>,
    format: Format,
    started: bool,
}

/// `GET /api/audit`: the audit as NDJSON (one [`AuditExportRecord`] a line) or CSV (header
/// [`CSV_HEADER`], cells guarded by [`csv_cell`]), records with `since <= at < until`, in time
/// order, streamed (module docs).
///
/// Errors: 400 `audit.bad_time` / `audit.bad_format`; 401; 403 without the Admin or Auditor
/// role; 503.
#[utoipa::path(get, path = "/api/audit", tag = "privacy", params(AuditQuery),
    responses((status = 200, description = "NDJSON (application/x-ndjson: one record a line) or, with format=csv, CSV (text/csv) with the same fields as columns; streamed", content_type = "application/x-ndjson", body = AuditExportRecord),
              (status = 400, description = "Bad `since`, `until` or `format`", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without the Admin or Auditor role", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit(
    _caller: AuditReader,
    State(state): State<AppState>,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let since = parse_time("since", q.since.as_deref())?;
    let until = parse_time("until", q.until.as_deref())?;
    let format = match q.format.as_deref().unwrap_or("ndjson") {
        "ndjson" | "" => Format::Ndjson,
        "csv" => Format::Csv,
        other => {
            return Err(ApiError::bad_request(
                Code::AuditBadFormat,
                format!("format must be ndjson or csv, got {other:?}"),
            ));
        }
    };
    let start = Streaming {
        store: state.store.clone(),
        metrics: state.metrics.clone(),
        since,
        until,
        next: Some(ExportCursor::default()),
        format,
        started: false,
    };
    let stream = futures::stream::try_unfold(start, |mut st| async move {
        let Some(after) = st.next.take() else {
            return Ok(None);
        };
        let header = !st.started;
        let page = st
            .store
            .audit_export_page(st.since, st.until, after, AUDIT_PAGE)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit export failed; the body ends early");
                std::io::Error::other("audit export failed")
            })?;
        st.metrics.audit_pages_read(page.pages_read);
        let chunk = render(&page.records, st.format, header)?;
        st.next = page.next;
        st.started = true;
        if chunk.is_empty() && st.next.is_none() {
            return Ok(None);
        }
        Ok::<_, std::io::Error>(Some((axum::body::Bytes::from(chunk), st)))
    });
    let (content_type, name) = match format {
        Format::Ndjson => ("application/x-ndjson", "audit.ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
