//! The counters of `/metrics` (Prometheus text format, served on the admin listener, issue 10
//! §7): connector answers per endpoint and answer kind, decisions per status, store pages read
//! by audit exports, and the stored requests per status as gauges (read by the caller from the
//! store's check index).

use std::sync::atomic::{AtomicU64, Ordering};

use guestlist_core::model::Status;
use guestlist_core::policy::{MessageKind, Policy};

/// A connector endpoint, for the counters of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /connectors/check-approval-status`.
    CheckApprovalStatus,
    /// `POST /connectors/request-approval`.
    RequestApproval,
    /// `POST /connectors/external-id/attribute-collection-start`.
    AttributeCollectionStart,
    /// `POST /connectors/external-id/attribute-collection-submit`.
    AttributeCollectionSubmit,
}

impl Endpoint {
    /// Every endpoint, in the order of [`Endpoint::index`].
    pub const ALL: [Endpoint; 4] = [
        Endpoint::CheckApprovalStatus,
        Endpoint::RequestApproval,
        Endpoint::AttributeCollectionStart,
        Endpoint::AttributeCollectionSubmit,
    ];

    /// The `endpoint` label, e.g. `check-approval-status`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::CheckApprovalStatus => "check-approval-status",
            Endpoint::RequestApproval => "request-approval",
            Endpoint::AttributeCollectionStart => "attribute-collection-start",
            Endpoint::AttributeCollectionSubmit => "attribute-collection-submit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Answers counted per endpoint: `Continue`, then one per [`MessageKind::ALL`].
const ANSWERS: usize = 1 + MessageKind::ALL.len();

/// Decision statuses counted by [`Metrics::decision`], in this order.
const DECIDED: [Status; 4] = [
    Status::Pending,
    Status::Approved,
    Status::Denied,
    Status::Expired,
];

/// Counters exported at `/metrics`: fixed arrays of atomics, so counting an answer is one
/// relaxed `fetch_add` (no lock, no allocation); labels are made only when rendering.
#[derive(Default)]
pub struct Metrics {
    connector: [[AtomicU64; ANSWERS]; 4],
    decisions: [AtomicU64; 4],
    audit_pages: AtomicU64,
}

fn answer_index(block: Option<MessageKind>) -> usize {
    match block {
        None => 0,
        Some(kind) => {
            1 + MessageKind::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or_default()
        }
    }
}

impl Metrics {
    /// Counts one connector answer: `block` is the block page's kind, `None` for `Continue`.
    pub fn connector_answer(&self, endpoint: Endpoint, block: Option<MessageKind>) {
        if let Some(c) = self.connector[endpoint.index()].get(answer_index(block)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one approver decision by resulting status.
    pub fn decision(&self, status: Status) {
        if let Some(i) = DECIDED.iter().position(|s| *s == status) {
            self.decisions[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `pages` store pages read by an audit export (`GET /api/audit` reads one page of
    /// `history` or `audit_log` at a time, [`crate::store::export::AUDIT_PAGE`] records each).
    pub fn audit_pages_read(&self, pages: u64) {
        self.audit_pages.fetch_add(pages, Ordering::Relaxed);
    }

    /// Store pages read by this server's audit exports so far (`guestlist_audit_pages_read_total`):
    /// a stalled reader stops the reading, which a test checks by this count.
    pub fn audit_pages_read_total(&self) -> u64 {
        self.audit_pages.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition (format 0.0.4). Answer labels are the codes `policy` gives
    /// each block page (`GUESTLIST-APPROVAL-PENDING`, …) or `Continue`; labelled counters still at zero
    /// are left out.
    pub fn render(&self, policy: &Policy, requests_by_status: &[(String, u64)]) -> String {
        use std::fmt::Write as _;
        let mut out = String::from(
            "# HELP guestlist_connector_answers_total Connector answers by endpoint and answer code.\n# TYPE guestlist_connector_answers_total counter\n",
        );
        for e in Endpoint::ALL {
            for (i, c) in self.connector[e.index()].iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let answer = match i.checked_sub(1).and_then(|k| MessageKind::ALL.get(k)) {
                    Some(kind) => policy.code(*kind),
                    None => "Continue".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "guestlist_connector_answers_total{{endpoint=\"{}\",answer=\"{answer}\"}} {n}",
                    e.label()
                );
            }
        }
        out.push_str("# HELP guestlist_decisions_total Approver decisions by resulting status.\n# TYPE guestlist_decisions_total counter\n");
        for (s, c) in DECIDED.iter().zip(&self.decisions) {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "guestlist_decisions_total{{status=\"{}\"}} {n}",
                    s.as_str()
                );
            }
        }
        out.push_str("# HELP guestlist_audit_pages_read_total Store pages read by audit exports.\n# TYPE guestlist_audit_pages_read_total counter\n");
        let _ = writeln!(
            out,
            "guestlist_audit_pages_read_total {}",
            self.audit_pages_read_total()
        );
        out.push_str("# HELP guestlist_requests Stored approval requests by status.\n# TYPE guestlist_requests gauge\n");
        for (s, n) in requests_by_status {
            let _ = writeln!(out, "guestlist_requests{{status=\"{s}\"}} {n}");
        }
        out
    }
}
