//! `bench-signup BASE N [CONCURRENCY]`: stores N pending requests through a running
//! `guestlist-server` at BASE (`http://host:port`), whatever its database: request-approval for
//! `user{i}@fabrikam.com`, `0 ≤ i < N` (the e-mails `bench/wrk/check-status.lua` looks up), with
//! the credentials `scripts/bench.sh` starts servers with, CONCURRENCY calls at a time (32).
//!
//! Used for PostgreSQL, where `bench-populate`'s bulk SQLite copy does not apply. Every call
//! must answer 200 `…-APPROVAL-REQUESTED` (or `…-PENDING` when the request already exists);
//! anything else stops it with an error naming the e-mail and the answer.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use guestlist_bench::user_email;
use serde_json::{Value, json};

/// The connector credentials of `scripts/bench.sh` (and `bench/wrk/common.lua`).
const USER: &str = "entra";
const PASSWORD: &str = "bench-connector-secret";

async fn sign_up(client: &reqwest::Client, url: &str, i: u64) -> anyhow::Result<()> {
    let email = user_email(i);
    let body = json!({"email": email, "displayName": "Bench User", "givenName": "Bench", "surname": "User",
        "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}],
        "ui_locales": "en-US"});
    let resp = client
        .post(url)
        .basic_auth(USER, Some(PASSWORD))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("request-approval for {email}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    let code = v["code"].as_str().unwrap_or_default();
    if status != 200
        || !(code.ends_with("-APPROVAL-REQUESTED") || code.ends_with("-APPROVAL-PENDING"))
    {
        bail!("request-approval for {email}: {status} {v}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: bench-signup BASE N [CONCURRENCY]";
    let mut args = std::env::args().skip(1);
    let base = args.next().context(usage)?;
    let n: u64 = args
        .next()
        .context(usage)?
        .parse()
        .context("N must be a number")?;
    let concurrency: usize = match args.next() {
        Some(c) => c.parse().context("CONCURRENCY must be a number")?,
        None => 32,
    };
    let url = format!("{}/connectors/request-approval", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let started = std::time::Instant::now();
    futures::stream::iter(0..n)
        .map(|i| sign_up(&client, &url, i))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    println!(
        "stored {n} requests through {base} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
