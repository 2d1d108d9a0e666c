//! Test-only helpers shared by the workspace's integration tests (issue 16 §4: one kit instead of
//! `#[path]` includes). Each module starts a real external process on 127.0.0.1 in a temp dir and
//! stops it on drop; nothing here is a mock.
//!
//! Only ever a `[dev-dependencies]` entry: shipped crates never link it.

pub mod net;
pub mod op;
pub mod postgres;
