//! `bench-reviewer SERVER_BIN DB RUNS`: the reviewer's sync against a real `guestlist-server`
//! process (release binary `SERVER_BIN`, on the populated database `DB`) and an in-process
//! devtenant. Each run opens a reviewer on an empty cache, signs in, times a full sync (every
//! pending request), then posts 10 new requests through the connector and times the
//! incremental sync (`GET /api/requests?since=<mark of the full sync>`: only the 10 new ones;
//! against a server without the `since` filter the reviewer re-lists everything). Prints one raw line per figure for `bench-report`:
//! `reviewer_full RUN ms=… fetched=… rss_kb=… rss_growth_kb=…` and
//! `reviewer_incremental RUN ms=… added=…`. RSS is this process's (devtenant + reviewer; the
//! server runs apart): `VmHWM` after the run and its growth over `VmRSS` before the sync.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use guestlist_bench::server::{ServerProcess, free_port, status_kb, wait_until_up};
use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults};
use guestlist_reviewer::{MemoryStore, OpenOptions, Reviewer};
use serde_json::json;

const USER: &str = "entra";
const PASS: &str = "bench-connector-secret";

async fn start_server(
    bin: &Path,
    db: &Path,
    dir: &Path,
    issuer: &str,
) -> anyhow::Result<(ServerProcess, String)> {
    let port = free_port()?;
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[approver_auth]\nissuer = {issuer:?}\naudiences = [{:?}, {:?}]\n",
            defaults::API_CLIENT_ID,
            defaults::API_APP_ID_URI
        ),
    )?;
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database"])
        .arg(db)
        .env("GUESTLIST_CONNECTOR_USERNAME", USER)
        .env("GUESTLIST_CONNECTOR_PASSWORD", PASS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    wait_until_up(ServerProcess(child), port, None).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-reviewer SERVER_BIN DB RUNS";
    let bin = PathBuf::from(args.next().context(usage)?);
    let db = PathBuf::from(args.next().context(usage)?);
    let runs: u32 = args.next().context(usage)?.parse()?;
    let work = db
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    let tenant = DevTenant::start(DevTenantConfig::default())
        .await
        .map_err(|e| anyhow::anyhow!("devtenant: {e}"))?;
    let (_server, api) = start_server(&bin, &db, &work, &tenant.issuer()).await?;
    let http = reqwest::Client::new();
    for run in 1..=runs {
        let dir = work.join(format!("reviewer-run{run}"));
        let _ = std::fs::remove_dir_all(&dir);
        let r = Reviewer::open_with(
            &dir,
            Some(guestlist_bench::devtenant_settings(
                tenant.issuer(),
                tenant.graph_base(),
                api.clone(),
            )),
            OpenOptions {
                token_store: Some(Arc::new(MemoryStore::new())),
                ..OpenOptions::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("open: {e:?}"))?;
        guestlist_bench::sign_in_as_ada(&r).await?;
        let rss_before = status_kb(std::process::id(), "VmRSS:");
        let t = Instant::now();
        let full = r.sync().await.map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
        let full_ms = t.elapsed().as_secs_f64() * 1000.0;
        let hwm = status_kb(std::process::id(), "VmHWM:");
        println!(
            "reviewer_full {run} ms={full_ms:.1} fetched={} added={} rss_kb={hwm} rss_growth_kb={}",
            full.fetched,
            full.added,
            hwm.saturating_sub(rss_before)
        );
        for i in 0..10 {
            let email = format!("incremental-{run}-{i}@contoso.example");
            let body = json!({"email": email, "displayName": "New Guest",
                "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]});
            let resp = http
                .post(format!("{api}/connectors/request-approval"))
                .basic_auth(USER, Some(PASS))
                .json(&body)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("request-approval answered {}", resp.status());
            }
        }
        let t = Instant::now();
        let inc = r.sync().await.map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
        let inc_ms = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "reviewer_incremental {run} ms={inc_ms:.1} fetched={} added={}",
            inc.fetched, inc.added
        );
        drop(r);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
