//! Slow callers: request heads sent a byte at a time, idle keep-alive connections and
//! trickling bodies are closed at their timeouts, while check-approval-status is answered.

use std::time::Instant;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;

use super::*;

/// Slowloris: clients that send their request head a byte at a time are closed after
/// `header_read_timeout_ms`, and check-approval-status is answered meanwhile. (The old
/// `axum::serve` never closed them: this test timed out waiting.)
#[tokio::test]
async fn slow_header_clients_are_closed_and_do_not_block_check_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.header_read_timeout_ms = 600;
    })
    .await;
    let addr = s.addr();
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(connect_from(LOCAL, addr).await);
    }
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let head = b"POST /connectors/check-approval-status HTTP/1.1\r\nHost: x\r\n";
        let mut closed = 0;
        for i in 0..head.len() {
            for c in slow.iter_mut() {
                let _ = c.write_all(&head[i..=i]).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        for mut c in slow {
            if closed_within(&mut c, Duration::from_secs(5))
                .await
                .is_some()
            {
                closed += 1;
            }
        }
        closed
    });
    // Served while the slow clients hold their connections.
    let c = client_from(LOCAL);
    let r = check_status(&c, &s.base_url(), PASS).await;
    assert_eq!(r.status(), 200);
    let closed = trickle.await.unwrap();
    assert_eq!(closed, 40, "every slow-header client was closed");
    // And still served after.
    assert_eq!(check_status(&c, &s.base_url(), PASS).await.status(), 200);
    s.shutdown().await;
}

/// A kept-alive connection that sends nothing after its answer is closed after
/// `header_read_timeout_ms` (the idle keep-alive timeout). (The old server kept it forever.)
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.header_read_timeout_ms = 500;
    })
    .await;
    let mut conn = connect_from(LOCAL, s.addr()).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let rest = closed_within(&mut conn, Duration::from_secs(5)).await;
    assert!(rest.is_some(), "the idle connection was closed");
    s.shutdown().await;
}

/// A body that trickles in is cut at `body_read_timeout_ms` with 408, and the connection
/// closes. (The old server waited for the body forever.)
#[tokio::test]
async fn a_slow_body_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.body_read_timeout_ms = 500;
    })
    .await;
    let mut conn = connect_from(LOCAL, s.addr()).await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    let head = format!(
        "POST /connectors/check-approval-status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"email\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(read.is_ok(), "the server closed the slow body's connection");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request.body_timeout"), "{text}");
    s.shutdown().await;
}
