//! Hostile event-stream clients against `GET /api/events` over real HTTP on 127.0.0.1 (issue 10
//! §2): idle clients that never read hold at most a page of frames each, caps refuse with 429 /
//! 503, a stream ends at its token's expiry, a `Last-Event-ID` ahead of the store (a restored
//! database) or too far behind gets a `resync` event, a client that falls behind the live
//! events gets a `resync` event, and a stream opened without `Last-Event-ID` gets no backlog.
//! Store reads that fail for a moment (injected with [`guestlist_server::live::EventHub::fail_reads`])
//! neither end a stream nor skip or repeat an event; reads that keep failing end it, and the
//! client resumes exactly with `Last-Event-ID`.

use guestlist_server::live::{REPLAY_ATTEMPTS, ReadSite};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn a_stream_without_last_event_id_gets_no_backlog() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    for n in 0..3 {
        sign_up(&s, &format!("old{n}@fabrikam.com"), 0).await;
    }
    let mut sock = open_stream(&s, &issuer.token("ada"), None, None).await;
    eventually("the stream is open", || {
        s.state.hub.stats().open_streams == 1
    })
    .await;
    sign_up(&s, "new@fabrikam.com", 0).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "id: 4\n", 10).await);
    assert!(text.contains("new@fabrikam.com"), "{text}");
    assert!(!text.contains("old0@fabrikam.com"), "backlog sent: {text}");
    assert!(!text.contains("id: 1\n"), "backlog sent: {text}");
}

#[tokio::test]
async fn idle_streams_that_never_read_hold_at_most_a_page_each() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.page_size = 20;
        c.events.max_streams_per_principal = 100;
        c.events.broadcast_capacity = 64;
    })
    .await;
    // 300 stored events of ~2 KB: a full replay is ~600 KB per stream.
    for n in 0..300 {
        sign_up(&s, &format!("p{n}@fabrikam.com"), 2000).await;
    }
    let token = issuer.token("ada");
    let mut socks = Vec::new();
    for _ in 0..30 {
        socks.push(open_stream(&s, &token, Some("0"), Some(4096)).await);
    }
    eventually("30 streams open", || s.state.hub.stats().open_streams == 30).await;
    // More live events than the broadcast ring holds, while nobody reads.
    for n in 0..200 {
        sign_up(&s, &format!("live{n}@fabrikam.com"), 2000).await;
        let st = s.state.hub.stats();
        assert!(st.buffered_frames <= st.max_buffered_frames, "{st:?}");
        assert!(st.queued_live_frames <= 64, "{st:?}");
    }
    eventually("the pump caught up", || {
        s.state.hub.stats().published_seq == 500
    })
    .await;
    let st = s.state.hub.stats();
    // Every stream is still open: a replay read that fails for a moment under load (a pool
    // acquire timeout on PostgreSQL) is tried again, it does not end the stream.
    assert_eq!(st.open_streams, 30, "streams ended while idle: {st:?}");
    assert_eq!(st.max_buffered_frames, 30 * 20, "{st:?}");
    assert!(
        st.buffered_frames <= st.max_buffered_frames,
        "replayed frames held: {st:?}"
    );
    assert!(st.queued_live_frames <= 64, "{st:?}");
    drop(socks);
    eventually("streams closed and their pages freed", || {
        let st = s.state.hub.stats();
        st.open_streams == 0 && st.buffered_frames == 0
    })
    .await;
}

async fn refused(s: &guestlist_server::RunningServer, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/events", s.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn caps_refuse_streams_per_principal_with_429_and_in_total_with_503() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.max_streams_per_principal = 2;
        c.events.max_streams = 3;
    })
    .await;
    let (ada, bob, eve) = (
        issuer.token("ada"),
        issuer.token("bob"),
        issuer.token("eve"),
    );
    let a1 = open_stream(&s, &ada, None, None).await;
    let _a2 = open_stream(&s, &ada, None, None).await;
    eventually("2 streams", || s.state.hub.stats().open_streams == 2).await;
    let (status, body) = refused(&s, &ada).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"]["code"],
        "events.too_many_streams_for_principal"
    );
    let _b1 = open_stream(&s, &bob, None, None).await;
    eventually("3 streams", || s.state.hub.stats().open_streams == 3).await;
    let (status, body) = refused(&s, &eve).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "events.too_many_streams");
    // A closed stream gives its place back.
    drop(a1);
    eventually("2 streams", || s.state.hub.stats().open_streams == 2).await;
    let mut again = open_stream(&s, &ada, None, None).await;
    let mut text = String::new();
    read_until(&mut again, &mut text, "200 OK", 10).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_stream_ends_at_its_tokens_expiry() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.approver_auth.leeway_seconds = 0;
        c.events.keepalive_seconds = 1;
    })
    .await;
    let token = issuer.sign(&issuer.claims("ada", 2));
    let mut sock = open_stream(&s, &token, None, None).await;
    let mut text = String::new();
    // The chunked body's last chunk or the end of the connection (`connection: close`),
    // whichever is seen first: both mean the stream ended. The old server never ended it.
    read_until(&mut sock, &mut text, "\r\n0\r\n\r\n", 20).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    eventually("the stream is closed", || {
        s.state.hub.stats().open_streams == 0
    })
    .await;
}

#[tokio::test]
async fn a_last_event_id_ahead_of_a_restored_store_gets_a_resync_event() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    for n in 0..5 {
        sign_up(&s, &format!("r{n}@fabrikam.com"), 0).await;
    }
    // The client saw event 50 of the database before it was restored from a backup.
    let mut sock = open_stream(&s, &issuer.token("ada"), Some("50"), None).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "event: resync\n", 10).await);
    read_until(&mut sock, &mut text, "\n\n0\r\n", 10).await;
    assert!(text.contains("\"reason\":\"ahead_of_store\""), "{text}");
    assert!(text.contains("\"latestSeq\":5"), "{text}");
    assert!(!text.contains("event: request.created"), "{text}");
}

#[tokio::test]
async fn a_last_event_id_too_far_behind_gets_a_resync_event() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.max_backlog = 10
    })
    .await;
    for n in 0..30 {
        sign_up(&s, &format!("b{n}@fabrikam.com"), 0).await;
    }
    let mut sock = open_stream(&s, &issuer.token("ada"), Some("1"), None).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "event: resync\n", 10).await);
    assert!(text.contains("\"reason\":\"too_far_behind\""), "{text}");
    assert!(!text.contains("event: request.created"), "{text}");
    // Exactly at the bound (10 behind), the backlog is replayed in order, then live events.
    let mut sock = open_stream(&s, &issuer.token("bob"), Some("20"), None).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "id: 30\n", 10).await);
    assert!(
        !text.contains("id: 20\n") && text.contains("id: 21\n"),
        "{text}"
    );
    sign_up(&s, "after@fabrikam.com", 0).await;
    assert!(read_until(&mut sock, &mut text, "id: 31\n", 10).await);
    assert!(!text.contains("event: resync"), "{text}");
}

#[tokio::test]
async fn a_client_that_falls_behind_the_live_events_gets_a_resync_event() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.broadcast_capacity = 8;
    })
    .await;
    let mut sock = open_stream(&s, &issuer.token("ada"), None, Some(4096)).await;
    eventually("the stream is open", || {
        s.state.hub.stats().open_streams == 1
    })
    .await;
    // ~6.4 MB of events while the client reads nothing: far more than the socket buffers and
    // hyper's write buffer hold, so the stream falls more than 8 events behind.
    for n in 0..400 {
        sign_up(&s, &format!("lag{n}@fabrikam.com"), 16_000).await;
    }
    let mut text = String::new();
    assert!(
        read_until(&mut sock, &mut text, "event: resync\n", 30).await,
        "stream ended without resync: {}",
        tail(&text)
    );
    read_until(&mut sock, &mut text, "}\n\n", 10).await;
    assert!(text.contains("\"reason\":\"lagged\""), "{}", tail(&text));
    assert!(s.state.hub.stats().resyncs >= 1);
}

/// The `id:` of every frame in `text` (a raw chunked SSE response), in the order received.
fn frame_ids(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

#[tokio::test]
async fn a_replay_read_that_fails_for_a_moment_is_retried_and_every_event_arrives_once_in_order() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.page_size = 5;
    })
    .await;
    for n in 0..40 {
        sign_up(&s, &format!("t{n}@fabrikam.com"), 0).await;
    }
    // The first two pages are read, then the third read fails three times (fewer than the
    // attempts allowed) before it succeeds.
    const FAILURES: u32 = 3;
    s.state.hub.fail_reads(ReadSite::Replay, 2, FAILURES);
    let mut sock = open_stream(&s, &issuer.token("ada"), Some("0"), None).await;
    let mut text = String::new();
    assert!(
        read_until(&mut sock, &mut text, "id: 40\n", 20).await,
        "the stream ended at a failed read: {}",
        tail(&text)
    );
    assert_eq!(frame_ids(&text), (1..=40).collect::<Vec<_>>());
    let st = s.state.hub.stats();
    assert_eq!(st.replay_retries, u64::from(FAILURES), "{st:?}");
    assert_eq!(st.open_streams, 1, "{st:?}");
    // Still open and live afterwards.
    sign_up(&s, "after@fabrikam.com", 0).await;
    assert!(read_until(&mut sock, &mut text, "id: 41\n", 10).await);
    assert_eq!(frame_ids(&text), (1..=41).collect::<Vec<_>>());
    assert!(!text.contains("event: resync"), "{}", tail(&text));
}

#[tokio::test]
async fn a_replay_read_that_keeps_failing_ends_the_stream_and_last_event_id_resumes_exactly() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |c| {
        c.events.page_size = 5;
    })
    .await;
    for n in 0..20 {
        sign_up(&s, &format!("k{n}@fabrikam.com"), 0).await;
    }
    // The first page is read; every later read fails, more times than the attempts allowed.
    s.state.hub.fail_reads(ReadSite::Replay, 1, 1000);
    let mut sock = open_stream(&s, &issuer.token("ada"), Some("0"), None).await;
    let mut text = String::new();
    // The chunked body's last chunk or the end of the connection: the stream ended.
    read_until(&mut sock, &mut text, "\r\n0\r\n\r\n", 20).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let got = frame_ids(&text);
    assert_eq!(got, (1..=5).collect::<Vec<_>>(), "{}", tail(&text));
    assert_eq!(
        s.state.hub.stats().replay_retries,
        u64::from(REPLAY_ATTEMPTS - 1)
    );
    eventually("the stream is closed", || {
        s.state.hub.stats().open_streams == 0
    })
    .await;
    // The store is back: the client resumes after the last id it got, and gets the rest once.
    s.state.hub.fail_reads(ReadSite::Replay, 0, 0);
    let last = got.last().copied().unwrap_or_default().to_string();
    let mut sock = open_stream(&s, &issuer.token("ada"), Some(&last), None).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "id: 20\n", 20).await);
    sign_up(&s, "after@fabrikam.com", 0).await;
    assert!(read_until(&mut sock, &mut text, "id: 21\n", 10).await);
    assert_eq!(frame_ids(&text), (6..=21).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_failed_pump_read_is_retried_and_the_live_event_arrives() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let mut sock = open_stream(&s, &issuer.token("ada"), None, None).await;
    eventually("the stream is open", || {
        s.state.hub.stats().open_streams == 1
    })
    .await;
    // The pump's next three reads fail. Before, it gave up until the next event woke it: on
    // SQLite (no other wake) this event stayed unsent.
    s.state.hub.fail_reads(ReadSite::Pump, 0, 3);
    sign_up(&s, "live@fabrikam.com", 0).await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "id: 1\n", 10).await);
    sign_up(&s, "live2@fabrikam.com", 0).await;
    assert!(read_until(&mut sock, &mut text, "id: 2\n", 10).await);
    assert_eq!(frame_ids(&text), vec![1, 2]);
    assert_eq!(s.state.hub.stats().published_seq, 2);
}
