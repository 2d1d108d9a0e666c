//! `guestlist-crash-trial`: the reviewer as a separate process that the crash-trial loop
//! (`it/crash_trials.rs`) kills. Opens the [`Reviewer`] on a data directory (settings and session
//! from a previous run there, refresh token in a [`FileStore`]), decides, and drains.
//!
//! Usage: `guestlist-crash-trial <data-dir> <token-file> [approve=<id> | deny=<id>]...`
//! (no decisions: only drain). Fault injection from the environment:
//! `GUESTLIST_CRASH_AFTER_WRITES=<n>` stops right after the n-th persisted outbox write;
//! `GUESTLIST_CRASH_AT_GRAPH_WRITE=1` right after a Graph write answered, before its id is
//! saved. There the process prints `CRASH write=<n> state=<state>` on stderr and freezes
//! ([`Faults::halt_for_kill`]) until the test sends `SIGKILL`. Exit code 0: the run finished
//! without a crash; it prints each outbox item as `ITEM <id> <state>`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use guestlist_reviewer::{Faults, OpenOptions, Reviewer};
use guestlist_tests::FileStore;

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, tokens, decisions @ ..] = args.as_slice() else {
        return Err(
            "usage: guestlist-crash-trial <data-dir> <token-file> [approve=<id>|deny=<id>]..."
                .into(),
        );
    };
    let faults = Faults {
        crash_after_writes: std::env::var("GUESTLIST_CRASH_AFTER_WRITES")
            .ok()
            .and_then(|v| v.parse().ok()),
        crash_after_graph_write: std::env::var("GUESTLIST_CRASH_AT_GRAPH_WRITE").is_ok(),
        halt_for_kill: true,
        ..Faults::default()
    };
    let r = Reviewer::open_with(
        Path::new(dir),
        None,
        OpenOptions {
            token_store: Some(Arc::new(FileStore::new(Path::new(tokens)))),
            faults,
            outbox_worker: false,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let pick = |prefix: &str| -> Vec<String> {
        decisions
            .iter()
            .filter_map(|d| d.strip_prefix(prefix).map(str::to_owned))
            .collect()
    };
    let (approve, deny) = (pick("approve="), pick("deny="));
    if !approve.is_empty() {
        r.approve(approve).await.map_err(|e| e.to_string())?;
    }
    if !deny.is_empty() {
        r.deny(deny, "crash trial".into())
            .await
            .map_err(|e| e.to_string())?;
    }
    for item in r.drain().await.map_err(|e| e.to_string())? {
        println!("ITEM {} {:?}", item.request_id, item.state);
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestlist-crash-trial: {e}");
            ExitCode::from(2)
        }
    }
}
