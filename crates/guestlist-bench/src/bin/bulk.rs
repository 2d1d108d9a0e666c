//! `bench-bulk RUNS`: bulk approval of 100 federated sign-ups against devtenant with 5 ms of
//! injected Graph latency, through a counting proxy in front of devtenant's Graph.
//!
//! Per run, three fresh sets of 100 requests (posted through the real connector of an in-process
//! `guestlist-server`, synced into a reviewer's cache):
//! - `bulk`: one `approve(all 100)`; Graph round trips and wall time;
//! - `one_by_one`: 100 × `approve([id])`; wall time (the ratio is taken in the same run);
//! - `bulk_throttled`: one `approve(all 100)` with devtenant answering 429 + `Retry-After: 1` to
//!   30 % of Graph requests/batch items; how many approvals are missing afterwards (`lost`, the
//!   guests that devtenant does not have plus outcomes not `done`), the 429s seen and the wall time
//!   (≥ 1 s shows Retry-After was waited for).
//!
//! Prints raw lines for `bench-report`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use guestlist_devtenant::config::FaultConfig;
use guestlist_devtenant::{DevTenant, DevTenantConfig, DevTenantHandle, defaults};
use guestlist_reviewer::{MemoryStore, OpenOptions, Outcome, QueueQuery, Reviewer};
use serde_json::json;

const USER: &str = "entra";
const PASS: &str = "bench-connector-secret";
const N: usize = 100;

/// The counting Graph proxy's state.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    requests: Arc<AtomicU64>,
    batches: Arc<AtomicU64>,
    throttled: Arc<AtomicU64>,
}

async fn forward(
    State(p): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    p.requests.fetch_add(1, Ordering::Relaxed);
    if uri.path().ends_with("/$batch") {
        p.batches.fetch_add(1, Ordering::Relaxed);
    }
    let path = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let mut req = p.http.request(method, format!("{}{path}", p.upstream));
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let out_headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    if status == StatusCode::TOO_MANY_REQUESTS || bytes.windows(12).any(|w| w == b"\"status\":429")
    {
        p.throttled.fetch_add(1, Ordering::Relaxed);
    }
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in &out_headers {
        if k != "content-length" && k != "transfer-encoding" {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

/// Posts `N` federated sign-ups tagged `tag` and syncs them in; returns their request ids.
async fn sign_ups(
    http: &reqwest::Client,
    api: &str,
    r: &Reviewer,
    tag: &str,
) -> anyhow::Result<Vec<String>> {
    for i in 0..N {
        let email = format!("{tag}-{i}@fabrikam.example");
        let body = json!({"email": email, "displayName": format!("Bulk {tag} {i}"),
            "givenName": "Bulk", "surname": format!("{tag}{i}"),
            "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": format!("g-{tag}-{i}")}]});
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
    r.sync().await.map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
    let view = r
        .queue(QueueQuery {
            q: Some(format!("{tag}-")),
            limit: Some(1000),
            ..QueueQuery::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("queue: {e:?}"))?;
    let ids: Vec<String> = view.items.into_iter().map(|i| i.id).collect();
    if ids.len() != N {
        bail!("expected {N} queued requests for {tag}, got {}", ids.len());
    }
    Ok(ids)
}

fn guests_with(tenant: &DevTenantHandle, tag: &str) -> usize {
    let needle = format!("{tag}-");
    tenant
        .users()
        .iter()
        .filter(|u| u["userType"] == "Guest" && u.to_string().contains(&needle))
        .count()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: u32 = std::env::args()
        .nth(1)
        .context("usage: bench-bulk RUNS")?
        .parse()?;
    let work = tempfile_dir()?;
    let tenant = DevTenant::start(DevTenantConfig::default())
        .await
        .map_err(|e| anyhow::anyhow!("devtenant: {e}"))?;

    // The counting proxy: same path layout as devtenant's Graph, another origin.
    let graph = url_split(&tenant.graph_base())?;
    let proxy = Proxy {
        upstream: graph.0.clone(),
        http: reqwest::Client::new(),
        requests: Arc::new(AtomicU64::new(0)),
        batches: Arc::new(AtomicU64::new(0)),
        throttled: Arc::new(AtomicU64::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy_origin = format!("http://{}", listener.local_addr()?);
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = guestlist_server::Config {
        listen: "127.0.0.1:0".parse()?,
        database: work.join("server.db").into(),
        connector: guestlist_server::config::ConnectorAuth {
            username: USER.into(),
            password: guestlist_server::config::Secret(PASS.into()),
            ..Default::default()
        },
        approver_auth: guestlist_server::config::ApproverAuth {
            issuer: Some(tenant.issuer()),
            audiences: vec![
                defaults::API_CLIENT_ID.into(),
                defaults::API_APP_ID_URI.into(),
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    let server = guestlist_server::spawn(config).await?;
    let api = server.base_url();
    let http = reqwest::Client::new();

    let r = Reviewer::open_with(
        &work.join("reviewer"),
        Some(guestlist_bench::devtenant_settings(
            tenant.issuer(),
            format!("{proxy_origin}{}", graph.1),
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

    let latency = FaultConfig {
        latency_ms: 5,
        ..FaultConfig::default()
    };
    for run in 1..=runs {
        // Bulk.
        let tag = format!("bulk{run}");
        let ids = sign_ups(&http, &api, &r, &tag).await?;
        tenant
            .set_faults(latency.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        proxy.requests.store(0, Ordering::Relaxed);
        proxy.batches.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let out = r
            .approve(ids)
            .await
            .map_err(|e| anyhow::anyhow!("approve: {e:?}"))?;
        let bulk_ms = t.elapsed().as_secs_f64() * 1000.0;
        let trips = proxy.requests.load(Ordering::Relaxed);
        let batches = proxy.batches.load(Ordering::Relaxed);
        let done = out.iter().filter(|o| o.outcome == Outcome::Done).count();
        tenant
            .set_faults(FaultConfig::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "bulk {run} ms={bulk_ms:.1} round_trips={trips} batch_requests={batches} done={done} guests={}",
            guests_with(&tenant, &tag)
        );

        // One by one.
        let tag = format!("single{run}");
        let ids = sign_ups(&http, &api, &r, &tag).await?;
        tenant
            .set_faults(latency.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        proxy.requests.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let mut done = 0;
        for id in ids {
            let out = r
                .approve(vec![id])
                .await
                .map_err(|e| anyhow::anyhow!("approve: {e:?}"))?;
            done += out.iter().filter(|o| o.outcome == Outcome::Done).count();
        }
        let single_ms = t.elapsed().as_secs_f64() * 1000.0;
        let trips = proxy.requests.load(Ordering::Relaxed);
        tenant
            .set_faults(FaultConfig::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "one_by_one {run} ms={single_ms:.1} round_trips={trips} done={done} guests={}",
            guests_with(&tenant, &tag)
        );

        // Bulk under throttling.
        let tag = format!("throttled{run}");
        let ids = sign_ups(&http, &api, &r, &tag).await?;
        tenant
            .set_faults(FaultConfig {
                throttle_rate: 0.3,
                retry_after_secs: 1,
                seed: u64::from(run),
                ..latency.clone()
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        proxy.requests.store(0, Ordering::Relaxed);
        proxy.throttled.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let out = r
            .approve(ids)
            .await
            .map_err(|e| anyhow::anyhow!("approve: {e:?}"))?;
        let mut done = out.iter().filter(|o| o.outcome == Outcome::Done).count();
        // Whatever was left queued by throttling is finished by the next drain, as in the app.
        if done < N {
            tenant
                .set_faults(FaultConfig::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let _ = r.drain().await;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let trips = proxy.requests.load(Ordering::Relaxed);
        let throttled = proxy.throttled.load(Ordering::Relaxed);
        tenant
            .set_faults(FaultConfig::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let guests = guests_with(&tenant, &tag);
        let pending_left = r
            .queue(QueueQuery {
                q: Some(format!("{tag}-")),
                limit: Some(1000),
                ..QueueQuery::default()
            })
            .await
            .map(|v| v.items.len())
            .unwrap_or(N);
        done = done.max(N - pending_left.min(N));
        println!(
            "bulk_throttled {run} ms={ms:.1} round_trips={trips} throttled_answers={throttled} done_first_pass={} guests={guests} lost={}",
            out.iter().filter(|o| o.outcome == Outcome::Done).count(),
            N.saturating_sub(guests.min(done))
        );
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// `(origin, path)` of a URL such as `http://127.0.0.1:4000/v1.0`.
fn url_split(u: &str) -> anyhow::Result<(String, String)> {
    let rest = u
        .strip_prefix("http://")
        .context("graph base is not http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((format!("http://{host}"), format!("/{path}")))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("guestlist-bench-bulk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
