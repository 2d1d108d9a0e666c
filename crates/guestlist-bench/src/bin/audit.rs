//! `bench-audit SERVER_BIN WORK_DIR RUNS`: the server's memory while it streams the audit
//! export of 1,000,000 decisions (issue 12 "Audit export", target ≤ 64 MB).
//!
//! The database holds 1,000,000 approval decisions in `history` (made by one SQL statement
//! from the real schema, `Store::open`), as after a million decided sign-ups whose requests
//! retention has erased. Each run starts a release `guestlist-server` on it (a real process,
//! approvers signed in by an issuer on 127.0.0.1), reads its `VmRSS` once it answers, then
//! downloads `GET /api/audit?format=ndjson` with an Auditor token as fast as it can, counting
//! bytes and lines without keeping them, and reads the server's `VmHWM` (peak RSS) after.
//! Prints `audit_export <run> hwm_kb=… base_kb=… rows=… mb=… ms=…` per run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guestlist_bench::server::{
    Issuer, ServerProcess, Subject, free_port, start_logged, status_kb, write_server_config,
};

const DECISIONS: u64 = 1_000_000;

/// Starts an issuer on 127.0.0.1 and returns its URL and an Auditor token it signed.
async fn issuer_and_token() -> anyhow::Result<(String, String)> {
    let issuer = Issuer::start("audit", "audit-bench-key", Duration::ZERO).await?;
    let auditor = Subject {
        oid: "00000000-0000-4000-8000-00000000a0d1",
        sub: "auditor",
        name: "Auditor",
        username: "auditor@contoso.onmicrosoft.com",
        role: "Auditor",
    };
    let token = issuer.token(&auditor, &issuer.kid)?;
    Ok((issuer.url, token))
}

/// A fresh database with [`DECISIONS`] approvals in `history`.
fn populate(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    drop(guestlist_server::store::SqliteStore::open(db)?);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    tx.execute(
        "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1)
         INSERT INTO history (request_id, at, action, actor_json, version, detail_json)
         SELECT printf('%08x-0000-7000-8000-%012x', i, i),
            strftime('%Y-%m-%dT%H:%M:%SZ', 1800000000 + i, 'unixepoch'), 'approved',
            '{\"kind\":\"user\",\"id\":\"7c1d2e3f-0000-4000-8000-000000000001\",\"name\":\"Ada Lovelace\",\"username\":\"ada@contoso.onmicrosoft.com\",\"client\":\"6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11 guestlist-desktop/1.0\"}',
            2, printf('{\"decision\":\"approve\",\"how\":\"invitation\",\"directoryObjectId\":\"%08x-1111-4000-8000-%012x\"}', i, i)
         FROM seq",
        [i64::try_from(DECISIONS)?],
    )?;
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

async fn start_server(
    bin: &Path,
    db: &Path,
    dir: &Path,
    issuer: &str,
) -> anyhow::Result<(ServerProcess, String)> {
    let port = free_port()?;
    let config = write_server_config(dir, "audit-server", port, db, issuer)?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&config)
        .env("GUESTLIST_CONNECTOR_USERNAME", "entra")
        .env(
            "GUESTLIST_CONNECTOR_PASSWORD",
            "audit-bench-connector-secret-1c9e",
        )
        .env("GUESTLIST_ADMIN_LISTEN", "off");
    start_logged(cmd, bin, dir, "audit-server", port).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-audit SERVER_BIN WORK_DIR RUNS";
    let bin = PathBuf::from(args.next().context(usage)?);
    let dir = PathBuf::from(args.next().context(usage)?);
    let runs: u32 = args.next().context(usage)?.parse().context("RUNS")?;
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("audit.db");
    let started = Instant::now();
    populate(&db)?;
    eprintln!(
        "   populated {DECISIONS} decisions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (issuer, token) = issuer_and_token().await?;
    let client = reqwest::Client::new();
    for run in 1..=runs {
        let (server, base) = start_server(&bin, &db, &dir, &issuer).await?;
        let pid = server.0.id();
        let base_kb = status_kb(pid, "VmRSS:");
        let t = Instant::now();
        let mut resp = client
            .get(format!("{base}/api/audit?format=ndjson"))
            .bearer_auth(&token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("audit export answered {}", resp.status());
        }
        let (mut bytes, mut rows) = (0u64, 0u64);
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len() as u64;
            rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let hwm_kb = status_kb(pid, "VmHWM:");
        if rows != DECISIONS {
            bail!("the export had {rows} records, not {DECISIONS}");
        }
        println!(
            "audit_export {run} hwm_kb={hwm_kb} base_kb={base_kb} rows={rows} mb={:.1} ms={ms:.0}",
            bytes as f64 / 1e6
        );
        drop(server);
    }
    Ok(())
}
