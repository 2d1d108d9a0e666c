//! The audit export streams in constant memory (issue 12 "Audit export"): 50,000 decisions
//! (about 17 MB of NDJSON) exported to a client that reads 64 KiB and then stalls. While it
//! stalls, the server must have read only as many store pages as fill the socket buffers, not
//! the whole export; once the client reads on, every record arrives and each page was read
//! exactly once (keyset pagination, no re-reads). Counted, not timed: the count is the
//! server's own (`guestlist_audit_pages_read_total`), so other tests of the binary running at
//! the same time do not disturb it.

use std::time::Duration;

use guestlist_server::store::export::AUDIT_PAGE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const DECISIONS: usize = 50_000;

#[tokio::test]
async fn a_stalled_reader_stops_the_export_and_a_full_read_reads_each_page_once() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // The schema, then 50,000 approvals written straight into `history`.
    // SQLite-only: rows are written straight into the file, and the property measured is the
    // dedicated export connection's memory (PostgreSQL pages the same trait method).
    drop(guestlist_server::store::SqliteStore::open(&db).unwrap());
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO history (request_id, at, action, actor_json, version, detail_json)
                     VALUES (?1, ?2, 'approved', ?3, 2, ?4)",
                )
                .unwrap();
            let t0 = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            let actor =
                serde_json::json!({"kind": "user", "id": "7c1d2e3f-0000-4000-8000-000000000001",
                "name": "Ada Lovelace", "username": "ada@contoso.onmicrosoft.com",
                "client": "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11 guestlist-desktop/1.0"})
                .to_string();
            for i in 0..DECISIONS {
                let at = (t0 + time::Duration::seconds(i as i64))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                let detail = serde_json::json!({"decision": "approve", "how": "invitation",
                    "directoryObjectId": uuid::Uuid::new_v4()})
                .to_string();
                stmt.execute(rusqlite::params![
                    uuid::Uuid::new_v4().to_string(),
                    at,
                    actor,
                    detail
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let s = start_sqlite(&issuer, &db, |_| {}).await;
    let mut c = issuer.claims("auditor-1", 3600);
    c["roles"] = serde_json::json!(["Auditor"]);
    let token = issuer.sign(&c);

    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut sock = sock.connect(s.addr()).await.unwrap();
    let req = format!(
        "GET /api/audit?format=ndjson HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while raw.len() < 64 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the export ended after {} bytes", raw.len());
        raw.extend_from_slice(&buf[..n]);
    }
    // Stall: wait until the server stops reading pages (the socket buffers are full).
    let pages_read_total = || s.state.metrics.audit_pages_read_total();
    let mut stalled = pages_read_total();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = pages_read_total();
        if now == stalled {
            break;
        }
        stalled = now;
    }
    let total_pages = (DECISIONS / AUDIT_PAGE) as u64;
    println!(
        "stalled after {} bytes read: {stalled} of {total_pages}+ pages read",
        raw.len()
    );
    assert!(
        stalled <= total_pages / 2,
        "{stalled} pages read for a client that took 64 KiB: the export is buffered, not streamed"
    );
    // Read on to the end.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert_eq!(text.matches("\"action\":\"approved\"").count(), DECISIONS);
    assert!(text.ends_with("0\r\n\r\n"), "a complete chunked body");
    // Each history page once, plus the empty read that ends it, plus one page of audit_log.
    assert_eq!(pages_read_total(), total_pages + 1 + 1);
    println!("export of {} bytes", raw.len());
    s.shutdown().await;
}
