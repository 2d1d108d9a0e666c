//! `bench-populate DB N`: a fresh `guestlist-server` database holding N pending requests.
//!
//! The schema comes from the real store (`Store::open` migrates it) and one template row from
//! the real `request_approval`; the other N−1 rows are copies made by one SQL statement, with
//! their own id, e-mail and identity key, so each lookup key is unique as in production.

use std::path::PathBuf;

use anyhow::Context;
use guestlist_bench::user_email;
use guestlist_core::connector::Claims;
use guestlist_core::policy::Policy;
use guestlist_server::store::SqliteStore as Store;
use serde_json::json;
use time::OffsetDateTime;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let db = PathBuf::from(args.next().context("usage: bench-populate DB N")?);
    let n: u64 = args
        .next()
        .context("usage: bench-populate DB N")?
        .parse()
        .context("N must be a number")?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let started = std::time::Instant::now();
    {
        let store = Store::open(&db)?;
        if n > 0 {
            let email = user_email(0);
            let claims = Claims::from_json(json!({
                "email": email, "displayName": "Bench User", "givenName": "Bench", "surname": "User",
                "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]
            }))
            .map_err(|e| anyhow::anyhow!("template claims: {e}"))?;
            store.request_approval(
                &claims,
                &Policy::default(),
                OffsetDateTime::now_utc(),
                time::Duration::ZERO,
            )?;
        }
    }
    if n > 1 {
        let mut conn = rusqlite::Connection::open(&db)?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        let tx = conn.transaction()?;
        tx.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1)
             INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json, version,
                created_at, updated_at, decided_by_json, attempts, claims_json, search, change_seq)
             SELECT printf('%08x-0000-7000-8000-%012x', i, i), 'user' || i || '@fabrikam.com', t.issuer,
                'user' || i || '@fabrikam.com', t.status, t.state_json, t.version,
                t.created_at, t.updated_at, t.decided_by_json, t.attempts,
                replace(t.claims_json, 'user0@', 'user' || i || '@'),
                replace(t.search, 'user0@', 'user' || i || '@'), t.change_seq + i
             FROM seq, (SELECT * FROM requests LIMIT 1) AS t",
            [i64::try_from(n - 1)?],
        )?;
        tx.commit()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    println!(
        "populated {} with {n} requests in {:.1} s",
        db.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
