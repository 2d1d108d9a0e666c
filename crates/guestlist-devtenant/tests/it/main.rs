//! devtenant's integration tests, one binary (`cargo test -p guestlist-devtenant --test it`),
//! one module per topic:
//!
//! - [`external_tenant`]: external tenant mode (the ciamlogin issuer) and the user flow through
//!   custom authentication extensions against a fake extension (issue 17 §5);
//! - [`graph_conformance`]: the Graph subset against `schemas/graph-subset.json` and Graph's
//!   error shape;
//! - [`graph_grants`]: group members, app role assignments and sponsors (issue 14 §1);
//! - [`oidc_conformance`]: the sign-in endpoints driven by an independent relying party
//!   ([`oidc_rp`]) and raw HTTP;
//! - [`oidc_provider`]: the same relying party against panva's certified `oidc-provider`
//!   (`guestlist_testkit::op`);
//! - [`userflow_flow`]: the sign-up user flow against a fake approval API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod external_tenant;
mod graph_conformance;
mod graph_grants;
mod oidc_conformance;
mod oidc_provider;
mod oidc_rp;
mod userflow_flow;
