//! Hostile approver tokens against the approver API over real HTTP on 127.0.0.1 (issue 10 §3):
//! random `kid`s in bulk cause at most one JWKS fetch (single flight, bounded refetch), an
//! issuer outage answers 503 `auth.issuer_unavailable` without the upstream URL and is not
//! refetched on every call, and tokens without the delegated scope or from a client outside
//! the allow-list are refused with their own codes.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::common::*;

/// A connection that is not set up within this is reported as such rather than waited on
/// for the kernel's ~127 s of SYN retries (a full listen backlog drops SYNs).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// A whole call, connection included, on a loaded two-core machine.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn get(base: &str, token: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .build()
        .unwrap();
    let r = match client
        .get(format!("{base}/api/requests"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_connect() => panic!(
            "no connection to the server within {CONNECT_TIMEOUT:?} (listen backlog full?): {e:?}"
        ),
        Err(e) if e.is_timeout() => panic!("no answer within {CALL_TIMEOUT:?}: {e:?}"),
        Err(e) => panic!("GET /api/requests: {e:?}"),
    };
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (status, format!("{} {www}", r.text().await.unwrap()))
}

#[tokio::test]
async fn five_hundred_concurrent_random_kids_cause_at_most_two_jwks_fetches() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // 500 connections from one address: above the per-address cap (tested in hostile_edge),
    // which this test is not about.
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.limits.max_connections_per_ip = 1024;
    })
    .await;
    let base = s.base_url();
    let claims = issuer.claims("ada", 3600);
    let calls = (0..500).map(|_| {
        let token = issuer.sign_kid(&claims, &uuid::Uuid::new_v4().to_string());
        let base = base.clone();
        tokio::spawn(async move { get(&base, &token).await.0 })
    });
    for status in futures::future::join_all(calls).await {
        assert_eq!(status.unwrap(), 401);
    }
    let jwks = issuer.jwks_hits.load(Ordering::SeqCst);
    let discovery = issuer.discovery_hits.load(Ordering::SeqCst);
    println!("500 random kids: {jwks} JWKS fetch(es), {discovery} discovery fetch(es)");
    assert!(jwks <= 2, "{jwks} JWKS fetches for 500 random kids");
    assert!(discovery <= 2, "{discovery} discovery fetches");
    // The keys fetched then serve a real token without another fetch.
    assert_eq!(get(&base, &issuer.token("ada")).await.0, 200);
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), jwks);
}

#[tokio::test]
async fn an_issuer_outage_answers_503_without_the_upstream_url_and_backs_off() {
    let issuer = Issuer::start().await;
    issuer.down.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let token = issuer.token("ada");
    let started = std::time::Instant::now();
    let (status, body) = get(&s.base_url(), &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("auth.issuer_unavailable"), "{body}");
    for leak in [issuer.host.as_str(), "127.0.0.1", "well-known", "/tenant"] {
        assert!(!body.contains(leak), "{leak:?} in {body}");
    }
    // Further calls within the backoff do not hit the issuer again. The backoff is 1 s after
    // the first failure, then 2 s, 4 s …, each counted from the end of the failed fetch: calls
    // spread over `t` seconds may fetch once more each time 1, 3, 7 … s have passed. On a
    // loaded machine the 21 calls can outlast the first backoffs, so the bound is that
    // schedule (while it stays under the 5 min cap), not a fixed count.
    for _ in 0..20 {
        assert_eq!(get(&s.base_url(), &token).await.0, 503);
    }
    let took = started.elapsed();
    let hits =
        issuer.discovery_hits.load(Ordering::SeqCst) + issuer.jwks_hits.load(Ordering::SeqCst);
    let allowed = 1
        + (1..32u32)
            .take_while(|k| std::time::Duration::from_secs((1u64 << k) - 1) <= took)
            .count() as u64;
    println!("21 calls during the outage in {took:?}: {hits} fetch(es), {allowed} allowed");
    assert!(
        hits <= allowed,
        "{hits} fetches during the outage in {took:?} (the backoff allows {allowed})"
    );
    // The issuer is back: once the backoff ends the keys are fetched again. The backoff in
    // force after `hits` failures is 2^(hits-1) s, so wait for recovery (10 s more at most)
    // rather than for a fixed 1.1 s.
    issuer.down.store(false, Ordering::SeqCst);
    let backoff = std::time::Duration::from_secs(1 << hits.saturating_sub(1).min(8));
    let deadline = std::time::Instant::now() + backoff + std::time::Duration::from_secs(10);
    let status = loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let status = get(&s.base_url(), &token).await.0;
        if status == 200 || std::time::Instant::now() > deadline {
            break status;
        }
        assert_eq!(status, 503, "during the backoff");
    };
    assert_eq!(
        status, 200,
        "the keys were not fetched again within 10 s of the {backoff:?} backoff"
    );
}

#[tokio::test]
async fn tokens_without_the_scope_or_from_another_client_are_refused() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let base = s.base_url();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = issuer.claims("ada", 3600);
        f(&mut c);
        issuer.sign(&c)
    };
    assert_eq!(get(&base, &issuer.token("ada")).await.0, 200);
    let (status, body) = get(&base, &with(&|c| c["scp"] = json!("User.Read"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth.scope_missing"), "{body}");
    let (status, body) = get(
        &base,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("scp");
        }),
    )
    .await;
    assert_eq!(status, 403, "app-only token: {body}");
    let (status, body) = get(
        &base,
        &with(&|c| c["azp"] = json!("11111111-2222-3333-4444-555555555555")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth.client_not_allowed"), "{body}");
    // A v1 token names its client in `appid`.
    let v1 = with(&|c| {
        c.as_object_mut().unwrap().remove("azp");
        c["appid"] = json!(DESKTOP);
    });
    assert_eq!(get(&base, &v1).await.0, 200);
}
