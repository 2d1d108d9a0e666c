//! Hostile traffic at the edge of the approval API (issue 10 §1, §5, §7), over real TCP on
//! 127.0.0.1 with real SQLite files. Every wait is bounded; nothing here asserts a speed. The
//! shared helpers are here, the tests in one module per topic:
//!
//! - [`slow`]: slow headers, idle keep-alive connections, slow bodies;
//! - [`floods`]: connection floods from one or many addresses, password guessing;
//! - [`gauges`]: the `/metrics` gauges of stored requests;
//! - [`tls`]: TLS certificate rotation, client certificates (made at test time with rcgen) and
//!   certificates forwarded by a TLS-terminating proxy.

mod floods;
mod gauges;
mod slow;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use guestlist_server::config::{ConnectorAuth, Secret};
use guestlist_server::edge::AdminListen;
use guestlist_server::{Config, RunningServer};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::common;

const USER: &str = "entra";
const PASS: &str = "a-long-connector-secret";

/// A second loopback address (Linux routes all of 127/8 to lo) for "another caller".
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn start(db: &Path, tweak: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: common::database(db),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        admin_listen: Some(AdminListen::At("127.0.0.1:0".parse().unwrap())),
        ..Config::default()
    };
    tweak(&mut config);
    common::spawn(config).await
}

fn claims(n: u32) -> Value {
    let email = format!("edge{n}@fabrikam.com");
    json!({"email": email, "displayName": "Edge",
        "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":email}]})
}

fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn check_status(c: &reqwest::Client, base: &str, pass: &str) -> reqwest::Response {
    c.post(format!("{base}/connectors/check-approval-status"))
        .basic_auth(USER, Some(pass))
        .json(&claims(1))
        .send()
        .await
        .unwrap()
}

/// A TCP connection from `local` to `to`.
async fn connect_from(local: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(local, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Reads until EOF or reset, within `within`; `Some(bytes read)` when the server closed.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The value of a `/metrics` series, e.g. `guestlist_requests{status="pending"}`.
async fn metric(s: &RunningServer, series: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", s.admin_url().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}
