//! Unit tests of the facade that need no servers, and the TypeScript bindings export.

use super::*;
use guestlist_core::model::{ApprovalRequest, IdentityKey, RequestState};
use serde_json::Value;
use serde_json::json;
use ts_rs::TS;

fn request(id: u128, email: &str, claims: Value, age_hours: i64) -> ApprovalRequest {
    let now = OffsetDateTime::now_utc();
    let mut c = claims.as_object().cloned().unwrap_or_default();
    c.insert("email".into(), json!(email));
    let issuer = c
        .get("identities")
        .and_then(|i| i[0]["issuer"].as_str())
        .unwrap_or("")
        .to_owned();
    ApprovalRequest {
        id: uuid::Uuid::from_u128(id),
        key: IdentityKey {
            email: email.to_lowercase(),
            issuer: issuer.clone(),
            issuer_assigned_id: if issuer.is_empty() {
                String::new()
            } else {
                format!("id{id}")
            },
        },
        state: RequestState::Pending,
        version: 1,
        created_at: now - time::Duration::hours(age_hours),
        updated_at: now,
        decided_by: None,
        attempts: 1,
        flow: Default::default(),
        completed_at: None,
        escalated_at: None,
        claims: c,
        grants: Vec::new(),
        route: None,
        approvals_required: 1,
        approvals: Vec::new(),
    }
}

fn fb(id: u128) -> Value {
    json!({"identities":[{"signInType":"federated","issuer":"facebook.com","issuerAssignedId":format!("id{id}")}]})
}

async fn open(dir: &Path) -> Reviewer {
    open_in(dir, Arc::new(MemoryStore::new())).await
}

/// Opens a reviewer on `dir` whose refresh token and cache key live in `store`.
async fn open_in(dir: &Path, store: Arc<dyn TokenStore>) -> Reviewer {
    Reviewer::open_with(
        dir,
        Some(Settings {
            undo_seconds: 0,
            ..Settings::default()
        }),
        OpenOptions {
            token_store: Some(store),
            faults: Faults::default(),
            outbox_worker: false,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn queue_search_filters_sort_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let reqs = vec![
        request(
            1,
            "ann@fabrikam.com",
            json!({"displayName":"Ann Lee","companyName":"Fabrikam"}),
            50,
        ),
        request(
            2,
            "bob@gmail.com",
            json!({"givenName":"Bob","surname":"Stone","identities":fb(2)["identities"]}),
            2,
        ),
        request(
            3,
            "cy@woodgrove.com",
            json!({"displayName":"Cy","extension_<extensions-app-id>_CompanyName":"Woodgrove Bank"}),
            10,
        ),
    ];
    r.inner.cache.store_pending(&reqs, true).unwrap();
    let all = r.queue(QueueQuery::default()).await.unwrap();
    assert_eq!(
        all.items
            .iter()
            .map(|i| i.email.as_str())
            .collect::<Vec<_>>(),
        ["ann@fabrikam.com", "cy@woodgrove.com", "bob@gmail.com"],
        "oldest first"
    );
    assert_eq!(all.total_pending, 3);
    assert_eq!(all.items[2].display_name, "Bob Stone");
    assert!(all.items[2].free_mail);
    assert_eq!(all.items[1].company.as_deref(), Some("Woodgrove Bank"));
    let q = |q: QueueQuery| {
        let r = r.clone();
        async move { r.queue(q).await.unwrap() }
    };
    let by_company = q(QueueQuery {
        q: Some("woodGROVE bank".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_company.total_matching, 1);
    let by_surname = q(QueueQuery {
        q: Some("stone".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_surname.items[0].id, uuid::Uuid::from_u128(2).to_string());
    let fbq = q(QueueQuery {
        identity_provider: Some("facebook.com".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(fbq.total_matching, 1);
    let entra = q(QueueQuery {
        identity_provider: Some("entra".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(entra.total_matching, 2);
    let dom = q(QueueQuery {
        email_domain: Some("@Fabrikam.com".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(dom.total_matching, 1);
    let old = q(QueueQuery {
        min_age_hours: Some(24),
        ..Default::default()
    })
    .await;
    assert_eq!(old.items.len(), 1);
    assert_eq!(old.items[0].email, "ann@fabrikam.com");
    let young = q(QueueQuery {
        max_age_hours: Some(12),
        sort: QueueSort::NewestFirst,
        ..Default::default()
    })
    .await;
    assert_eq!(
        young
            .items
            .iter()
            .map(|i| i.email.as_str())
            .collect::<Vec<_>>(),
        ["bob@gmail.com", "cy@woodgrove.com"]
    );
    let like = q(QueueQuery {
        q: Some("%".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(like.total_matching, 0, "LIKE wildcards are escaped");
    assert_eq!(
        all.by_provider
            .iter()
            .find(|c| c.value == "entra")
            .unwrap()
            .count,
        2
    );
    // A complete sync without request 1 removes it; an unchanged version is not rewritten.
    let (a, u, rm) = r.inner.cache.store_pending(&reqs[1..], true).unwrap();
    assert_eq!((a, u, rm), (0, 0, 1));
}

#[tokio::test]
async fn database_file_is_private_and_outbox_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    {
        let r = open_in(dir.path(), store.clone()).await;
        let req = request(7, "x@fabrikam.com", json!({}), 1);
        r.inner
            .cache
            .store_pending(std::slice::from_ref(&req), true)
            .unwrap();
        // Not signed in: the decision is kept in the outbox, state queued.
        let out = r
            .deny(vec![req.id.to_string()], "  unknown  ".into())
            .await
            .unwrap();
        assert_eq!(out[0].outcome, Outcome::Queued);
        assert_eq!(out[0].error.as_ref().unwrap().code, codes::NOT_SIGNED_IN);
        let e = r
            .deny(vec![req.id.to_string()], "   ".into())
            .await
            .unwrap_err();
        assert_eq!(e.code, codes::INVALID_INPUT);
        assert_eq!(
            r.approve(vec![]).await.unwrap_err().code,
            codes::INVALID_INPUT
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("reviewer.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let r = open_in(dir.path(), store).await;
    assert_eq!(r.status().await.last_error, None);
    let st = r.status().await;
    assert_eq!(st.outbox.len(), 1);
    assert_eq!(st.outbox[0].state, OutboxState::Queued);
    assert_eq!(st.outbox[0].kind, DecisionKind::Deny);
    let row = r
        .inner
        .cache
        .outbox(&uuid::Uuid::from_u128(7).to_string())
        .unwrap()
        .unwrap();
    assert_eq!(row.reason.as_deref(), Some("unknown"));
    assert!(uuid::Uuid::parse_str(&row.idempotency_key).is_ok());
}

mod encryption;
mod erasure;
mod escalation;

#[tokio::test]
async fn detail_rows_plan_and_risks_offline() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let req = request(
        9,
        "jo@gmail.com",
        json!({"displayName":"Jo","lastName":"Doe","companyName":"Fabrikam","extension_<extensions-app-id>_Sponsor":"ada",
               "identities":[{"signInType":"federated","issuer":"google.com","issuerAssignedId":"g-9"}]}),
        3,
    );
    r.inner
        .cache
        .store_pending(std::slice::from_ref(&req), true)
        .unwrap();
    let d = r.detail(req.id.to_string()).await.unwrap();
    assert_eq!(d.identity.issuer.as_deref(), Some("google.com"));
    assert_eq!(d.identity.issuer_assigned_id.as_deref(), Some("g-9"));
    let surname = d
        .rows
        .iter()
        .find(|r| r.claim.as_deref() == Some("lastName"))
        .unwrap();
    assert_eq!(surname.property.as_deref(), Some("surname"));
    assert_eq!(surname.will_be_written, Some(json!("Doe")));
    let sponsor = d.rows.iter().find(|r| r.attribute == "Sponsor").unwrap();
    assert_eq!(sponsor.submitted, Some(json!("ada")));
    assert_eq!(
        sponsor.will_be_written, None,
        "no extensions app id configured: skipped"
    );
    assert!(d.skipped.iter().any(|s| s.claim.ends_with("_Sponsor")));
    let upn = d
        .rows
        .iter()
        .find(|r| r.attribute == "userPrincipalName")
        .unwrap();
    assert_eq!(
        upn.will_be_written,
        Some(json!("jo_gmail.com#EXT@contoso.onmicrosoft.com"))
    );
    assert!(d.plan.as_ref().unwrap().writes[0].path == "/users");
    assert!(d.risks.iter().any(|k| k.kind == RiskKind::FreeMail));
    assert!(!d.directory.checked);
    assert_eq!(
        r.detail("nope".into()).await.unwrap_err().code,
        codes::NOT_FOUND
    );
}

#[tokio::test]
async fn decided_items_are_purged_after_the_configured_days_and_sign_out_wipes() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let cache = &r.inner.cache;
    let (a, b, c) = (
        request(21, "a@fabrikam.com", fb(21), 1),
        request(22, "b@fabrikam.com", fb(22), 1),
        request(23, "c@fabrikam.com", fb(23), 1),
    );
    cache
        .store_pending(&[a.clone(), b.clone(), c.clone()], true)
        .unwrap();
    let t0 = OffsetDateTime::now_utc();
    let mut done = cache
        .enqueue(&a, DecisionKind::Deny, Some("no"), t0)
        .unwrap();
    done.state = OutboxState::Reported;
    cache.save_outbox(&done, t0).unwrap();
    cache.remove_request(&a.id.to_string()).unwrap();
    cache.enqueue(&b, DecisionKind::Approve, None, t0).unwrap();
    let days = r.settings().purge_decided_after_days;
    assert_eq!(days, 30);
    let day = time::Duration::days(1);
    assert_eq!(cache.purge(days, t0 + day * 29).unwrap(), 0, "too recent");
    assert_eq!(cache.purge(days, t0 + day * 31).unwrap(), 1);
    assert!(cache.outbox(&a.id.to_string()).unwrap().is_none(), "purged");
    assert!(
        cache.outbox(&b.id.to_string()).unwrap().is_some(),
        "unfinished: kept"
    );
    cache.set_meta("last_event_id", Some("41")).unwrap();

    // Sign-out without wiping keeps the queue; with wiping, only unfinished decisions remain.
    r.sign_out(false).await.unwrap();
    assert_eq!(r.status().await.pending_count, 2);
    r.sign_out(true).await.unwrap();
    let st = r.status().await;
    assert_eq!(st.pending_count, 0);
    assert!(cache.request_ids().unwrap().is_empty());
    assert_eq!(st.outbox.len(), 1);
    assert_eq!(st.outbox[0].request_id, b.id.to_string());
    assert_eq!(st.outbox[0].state, OutboxState::Queued);
    assert_eq!(
        cache.meta("last_event_id").unwrap(),
        None,
        "the event stream starts over"
    );
}

#[tokio::test]
async fn settings_are_persisted_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let mut s = r.settings();
    s.do_not_disturb = true;
    r.save_settings(s.clone()).await.unwrap();
    assert!(r.settings().do_not_disturb);
    let again = Settings::load(dir.path(), None).unwrap();
    assert_eq!(again, s);
    s.client_id = " ".into();
    assert_eq!(r.save_settings(s).await.unwrap_err().code, codes::SETTINGS);
}

/// Writes the TypeScript bindings of every facade type (and the core types they use) into
/// `ui/src/bindings/` at the workspace root.
#[test]
fn export_bindings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings");
    // Large integers (u64/i64) are `number`: the values the UI sees stay far below 2^53, and
    // JSON never carries a `bigint` (the fields say so with `#[ts(type = "number")]` too).
    let cfg = ts_rs::Config::new()
        .with_out_dir(&dir)
        .with_large_int("number");
    Settings::export_all(&cfg).unwrap();
    std::fs::write(
        dir.join("providerLabels.ts"),
        guestlist_core::provider::labels_ts(),
    )
    .unwrap();
    ReviewerError::export_all(&cfg).unwrap();
    SessionInfo::export_all(&cfg).unwrap();
    AppStatus::export_all(&cfg).unwrap();
    QueueQuery::export_all(&cfg).unwrap();
    QueueView::export_all(&cfg).unwrap();
    SyncReport::export_all(&cfg).unwrap();
    RequestDetail::export_all(&cfg).unwrap();
    DecisionOutcome::export_all(&cfg).unwrap();
    OutboxItem::export_all(&cfg).unwrap();
    UndoOutcome::export_all(&cfg).unwrap();
    crate::rights::ApproverRights::export_all(&cfg).unwrap();
    HistoryEntry::export_all(&cfg).unwrap();
    guestlist_core::Code::export_all(&cfg).unwrap();
    for f in [
        "Settings.ts",
        "AppStatus.ts",
        "RequestDetail.ts",
        "ApprovalRequest.ts",
        "ProvisioningPlan.ts",
        "HistoryEntry.ts",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains("export type"), "{f}");
    }
}

#[tokio::test]
async fn the_same_person_through_two_providers_is_grouped_with_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let mut google = request(
        11,
        "Linnea@Hotmail.com",
        json!({"identities":[{"signInType":"federated","issuer":"google.com","issuerAssignedId":"g"}]}),
        3,
    );
    google.attempts = 2;
    let msa = request(
        12,
        "linnea@hotmail.com",
        json!({"displayName": "Linnéa Öberg"}),
        1,
    );
    let other = request(13, "someone@fabrikam.com", json!({}), 2);
    r.inner
        .cache
        .store_pending(&[google, msa, other], true)
        .unwrap();
    let v = r.queue(QueueQuery::default()).await.unwrap();
    let by_id = |n: u128| {
        v.items
            .iter()
            .find(|i| i.id == uuid::Uuid::from_u128(n).to_string())
            .unwrap()
    };
    for n in [11, 12] {
        let i = by_id(n);
        assert_eq!(
            (i.same_person, i.person_attempts, i.person_providers),
            (2, 3, 2),
            "{i:?}"
        );
    }
    assert_eq!(by_id(12).identity_provider, "microsoftaccount");
    let o = by_id(13);
    assert_eq!((o.same_person, o.person_attempts), (1, 1));
    assert_eq!(o.identity_provider, "entra");
}

/// The queue groups a person's requests by the server's canonical e-mail: fullwidth,
/// upper-case and Kelvin-sign spellings of one address are one person.
#[test]
fn group_key_is_the_canonical_email() {
    let k = cache::group_key("kim@fabrikam.com");
    assert_eq!(cache::group_key("ＫＩＭ＠ＦＡＢＲＩＫＡＭ．ＣＯＭ"), k);
    assert_eq!(cache::group_key(" \u{212A}im@Fabrikam.com"), k);
    assert_ne!(cache::group_key("kim@fabrikam.se"), k);
}
