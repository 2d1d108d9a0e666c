//! Replicas under load and through outages: kill -9 of one, PostgreSQL restarted, one cut off
//! from PostgreSQL, Entra's retry on another replica (module docs of [`super`]).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_behind_haproxy_loses_no_answered_sign_up() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for i in 0..3 {
        replicas.push(Replica::start(&url, dir.path(), &format!("r{i}")).await);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let lb = Haproxy::start(dir.path(), &ports).await;

    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = sign_up_load(lb.base(), "kill-", 8, t0, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = t0.elapsed();
    replicas[0].kill_9();
    // HAProxy notices within fall × inter; 1 s of slack for a loaded machine.
    let settled = killed_at + CHECK_INTER * CHECK_FALL + Duration::from_secs(1);
    lb.wait_for(|s| s.get("r0").is_some_and(|v| v.starts_with("DOWN")))
        .await;
    tokio::time::sleep((settled + Duration::from_secs(2)).saturating_sub(t0.elapsed())).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = load.await.unwrap();

    let answered = calls.iter().filter(|c| c.status == Some(200)).count();
    let failed: Vec<&Call> = calls.iter().filter(|c| c.status != Some(200)).collect();
    let after: Vec<&Call> = calls.iter().filter(|c| c.started >= settled).collect();
    println!(
        "kill -9 under load: {} calls, {answered} answered 200, {} failed (all before {:?} after the kill), {} started after the window",
        calls.len(),
        failed.len(),
        settled - killed_at,
        after.len()
    );
    assert!(
        calls.iter().filter(|c| c.started < killed_at).count() > 20,
        "the load ran too briefly before the kill to mean anything"
    );
    assert!(
        after.len() > 20,
        "too few calls after the health-check window to mean anything"
    );
    let late_failures: Vec<&&Call> = after.iter().filter(|c| c.status != Some(200)).collect();
    assert!(
        late_failures.is_empty(),
        "calls started after fall × inter + 1 s failed: {late_failures:?}"
    );
    assert_answered_stored_once(&url, "kill-", &calls);
    for r in replicas.iter_mut().skip(1) {
        assert!(r.is_running());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_fails_fast_and_every_replica_recovers() {
    let _serial = SERIAL.lock().await;
    // Its own cluster: this test stops it.
    let cluster = Cluster::start().unwrap();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for i in 0..2 {
        replicas.push(Replica::start(&url, dir.path(), &format!("r{i}")).await);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let lb = Haproxy::start(dir.path(), &ports).await;

    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = sign_up_load(lb.base(), "restart-", 4, t0, stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let down_at = t0.elapsed();
    cluster.stop().unwrap();
    // While PostgreSQL is down, each replica itself answers a connector call with 503 before the
    // client's timeout, and so does its /readyz.
    let client = http(CLIENT_TIMEOUT);
    for r in &replicas {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _) = connector(
                &client,
                &r.base(),
                "check-approval-status",
                &sign_up("restart-probe@fabrikam.com"),
            )
            .await;
            assert!(
                status.is_some(),
                "a call during the outage got no answer within {CLIENT_TIMEOUT:?}"
            );
            let ready = client.get(format!("{}/readyz", r.base())).send().await;
            let ready = ready.map(|r| r.status().as_u16()).ok();
            if status == Some(503) && ready == Some(503) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica still answers {status:?} (readyz {ready:?}) with PostgreSQL stopped"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.start_again().unwrap();
    let up_at = t0.elapsed();

    // Every replica answers again, without being restarted.
    for r in replicas.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = connector(
                &client,
                &r.base(),
                "request-approval",
                &sign_up(&format!("restart-after-{}@fabrikam.com", r.port)),
            )
            .await;
            if status == Some(200) {
                assert_eq!(body["code"], "GUESTLIST-APPROVAL-REQUESTED");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica did not recover after PostgreSQL came back: {status:?} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(r.is_running(), "the replica was not restarted");
    }
    lb.wait_for(|s| s.values().all(|v| v == "UP")).await;
    let recovered_at = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = load.await.unwrap();

    // Through HAProxy, every call got an HTTP answer: 200, or 503 during the outage — none hung
    // until the client's timeout, none was cut without an answer.
    let unanswered: Vec<&Call> = calls.iter().filter(|c| c.status.is_none()).collect();
    assert!(
        unanswered.is_empty(),
        "calls without an answer within {CLIENT_TIMEOUT:?}: {unanswered:?}"
    );
    let odd: Vec<&Call> = calls
        .iter()
        .filter(|c| !matches!(c.status, Some(200 | 503)))
        .collect();
    assert!(odd.is_empty(), "answers other than 200 or 503: {odd:?}");
    let outage = calls
        .iter()
        .filter(|c| c.started >= down_at && c.started < up_at)
        .count();
    let failed = calls.iter().filter(|c| c.status == Some(503)).count();
    let slowest = calls.iter().map(|c| c.took).max().unwrap_or_default();
    println!(
        "PostgreSQL restart under load: {} calls, {outage} started during the outage ({:?}), {failed} answered 503, slowest answer {slowest:?}, all replicas back {:?} after the restart",
        calls.len(),
        up_at - down_at,
        recovered_at - up_at
    );
    assert!(failed > 0, "the outage was not seen by the load");
    assert!(
        calls
            .iter()
            .any(|c| c.started >= recovered_at && c.status == Some(200)),
        "no call succeeded after the recovery"
    );
    assert_answered_stored_once(&url, "restart-", &calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_postgres_answers_503_leaves_the_pool_and_recovers() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    // Replica r1 reaches PostgreSQL through a TCP proxy: the "network" that is cut.
    let pg = std::net::SocketAddr::from(([127, 0, 0, 1], cluster.port()));
    let link = guestlist_tests::Proxy::start(pg).await.unwrap();
    let link_port = link.url().rsplit(':').next().unwrap().to_owned();
    let cut_url = url.replacen(&format!(":{}/", pg.port()), &format!(":{link_port}/"), 1);
    assert_ne!(cut_url, url, "the database URL names {pg}: {url}");
    let a = Replica::start(&url, dir.path(), "r0").await;
    let mut b = Replica::start(&cut_url, dir.path(), "r1").await;
    let lb = Haproxy::start(dir.path(), &[a.port, b.port]).await;
    let client = http(CLIENT_TIMEOUT);

    link.set_up(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{}/readyz", b.base())).send().await;
        let ready = ready.map(|r| r.status().as_u16()).ok();
        let (status, _) = connector(
            &client,
            &b.base(),
            "request-approval",
            &sign_up("cut-b@fabrikam.com"),
        )
        .await;
        assert!(
            status.is_some(),
            "the cut-off replica gave no answer within {CLIENT_TIMEOUT:?}"
        );
        if ready == Some(503) && status == Some(503) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cut off from PostgreSQL, the replica still answers readyz {ready:?}, request-approval {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lb.wait_for(|s| s.get("r1").is_some_and(|v| v.starts_with("DOWN")) && s["r0"] == "UP")
        .await;
    // Through HAProxy every call lands on the healthy replica.
    for i in 0..20 {
        let (status, _) = connector(
            &client,
            &lb.base(),
            "request-approval",
            &sign_up(&format!("cut-lb-{i}@fabrikam.com")),
        )
        .await;
        assert_eq!(status, Some(200), "call {i} through haproxy");
    }

    link.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = connector(
            &client,
            &b.base(),
            "request-approval",
            &sign_up("cut-b@fabrikam.com"),
        )
        .await;
        if status == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not recover: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lb.wait_for(|s| s.values().all(|v| v == "UP")).await;
    assert!(b.is_running(), "the replica was not restarted");
    let stored = stored_per_email(&url, "cut-");
    assert_eq!(stored.len(), 21, "{stored:?}");
    assert!(stored.values().all(|n| *n == 1), "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_retry_on_another_replica_gets_the_same_answer_and_one_request() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let a = Replica::start(&url, dir.path(), "r0").await;
    let b = Replica::start(&url, dir.path(), "r1").await;
    let client = http(CLIENT_TIMEOUT);

    // In turn: the call to A, then Entra's retry of the same call to B.
    let body = sign_up("retry-turn@fabrikam.com");
    let (sa, first) = connector(&client, &a.base(), "request-approval", &body).await;
    let (sb, retry) = connector(&client, &b.base(), "request-approval", &body).await;
    assert_eq!((sa, sb), (Some(200), Some(200)));
    assert_eq!(first["code"], "GUESTLIST-APPROVAL-REQUESTED");
    assert_eq!(retry, first, "the retry on B answers as A did");

    // At once: ten people whose call and retry reach A and B at the same time.
    let mut races = Vec::new();
    for i in 0..10 {
        let (client, a, b) = (client.clone(), a.base(), b.base());
        races.push(tokio::spawn(async move {
            let body = sign_up(&format!("retry-race-{i}@fabrikam.com"));
            let (x, y) = tokio::join!(
                connector(&client, &a, "request-approval", &body),
                connector(&client, &b, "request-approval", &body)
            );
            assert_eq!((x.0, y.0), (Some(200), Some(200)));
            assert_eq!(x.1, y.1, "both replicas answer the same");
        }));
    }
    for r in races {
        r.await.unwrap();
    }

    let rows = sql(
        &url,
        "SELECT email, count(*), max(attempts) FROM requests WHERE email LIKE 'retry-%' GROUP BY email ORDER BY email",
    );
    assert_eq!(rows.len(), 11, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (r[1].as_str(), r[2].as_str()),
            ("1", "1"),
            "one request, one attempt: {r:?}"
        );
    }
    // One "requested" history entry each: the retry wrote nothing.
    let history = sql(
        &url,
        "SELECT r.email, count(*) FROM history h JOIN requests r ON r.id = h.request_id \
         WHERE r.email LIKE 'retry-%' GROUP BY r.email HAVING count(*) <> 1",
    );
    assert!(
        history.is_empty(),
        "history written by a retry: {history:?}"
    );
}
