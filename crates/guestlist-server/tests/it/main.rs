//! guestlist-server's integration tests, one binary (`cargo test -p guestlist-server --test it`;
//! issue 16 "Cheaper tests": one integration-test binary per crate), one module per topic, all
//! over real HTTP on 127.0.0.1 with real SQLite files or, with `GUESTLIST_TEST_STORE=postgres`,
//! a real PostgreSQL that the binary starts once ([`common::database`]):
//!
//! - [`api`]: the connector answers of the seed, the wire's edges, the approver API with real
//!   RS256 tokens, the JWT attack suite, the live queue and its metrics;
//! - [`canonical`], [`early_block`]: one canonical e-mail; auto-deny before a request is stored;
//! - [`real_tenant_tokens`]: v1.0 tokens of the configured tenant, no self-approval (issue 14);
//! - [`hostile_auth`], [`hostile_edge`], [`hostile_streams`], [`hostile_webhook`]: hostile
//!   callers at every bound (issue 10);
//! - [`at_rest`], [`audit_stream`], [`privacy_audit`], [`privacy_erase`]: the database at rest,
//!   the streamed audit export, erasure byte by byte (issue 12);
//! - [`guest_email`]: the guest e-mail job against a real SMTP receiver (issue 14 §5);
//! - [`escalation`]: routed requests escalating to the fallback role, once, with one reminder
//!   (issue 14 §2);
//! - [`pg_store`], [`replicas_live`]: the PostgreSQL store across replicas (issue 13);
//! - [`process`]: the `guestlist-server` binary as a process, killed with SIGKILL mid-load;
//! - [`store_parity`]: rules on which the SQLite and PostgreSQL stores used to differ;
//! - [`wal`]: the SQLite store's WAL checkpoints, off the writer thread and bounded.
//!
//! Sharing one process: no test changes process-wide state. Processes killed with SIGKILL,
//! umasks and environment variables are those of child processes (`process`, `at_rest`);
//! captured logs use a scoped subscriber (`tracing::subscriber::with_default`,
//! `WithSubscriber`), never the global one; counters a test reads are per server
//! (`RunningServer::state`), never per process; `RLIMIT_NOFILE` is only ever raised to the
//! hard limit, which every server start does alike.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // test code: a panic is the failure report

mod common;

mod api;
mod at_rest;
mod audit_stream;
mod canonical;
mod early_block;
mod escalation;
mod external_flow;
mod guest_email;
mod hostile_auth;
mod hostile_edge;
mod hostile_streams;
mod hostile_webhook;
mod pg_store;
mod privacy_audit;
mod privacy_erase;
mod process;
mod real_tenant_tokens;
mod replicas_live;
mod routes;
mod store_parity;
mod wal;
