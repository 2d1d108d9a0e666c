//! Integration tests (one binary).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod crash_trials;
mod devtenant_external;
mod external_approval;
mod grants;
mod live;
mod notifications;
mod real_tenant;
mod reopen;
mod replicas;
mod reviewer;
mod reviewer_approve;
mod reviewer_graph;
mod reviewer_oidc_provider;
mod sync;
mod two_approvers;
