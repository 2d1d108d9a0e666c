//! guestlist-reviewer driven headless against devtenant + guestlist-server (real HTTP on
//! 127.0.0.1, real SQLite files in temp dirs): sign-in (code + PKCE over the loopback redirect,
//! in-memory token store), sync, approve (POST /users; invitation + PATCH), deny (the
//! check-status connector then blocks), crash recovery without a second account, a 409 race
//! between two reviewers, and the outbox surviving the server going away.

use std::path::Path;
use std::sync::Arc;

use guestlist_core::model::{ProvisionedBy, RequestState};
use guestlist_core::plan::{ProvisioningSettings, UpnForm};
use guestlist_devtenant::{DevTenant, DevTenantConfig, DevTenantHandle, defaults};
use guestlist_reviewer::{
    Faults, MemoryStore, OpenOptions, OutboxState, Outcome, QueueQuery, Reviewer, Settings, codes,
};
use serde_json::{Value, json};

const USER: &str = "entra-connector";
const PASS: &str = "s3cret-connector";

pub(crate) struct Env {
    pub(crate) tenant: DevTenantHandle,
    pub(crate) server: Option<guestlist_server::RunningServer>,
    pub(crate) server_addr: std::net::SocketAddr,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) fn server_config(
    tenant: &DevTenantHandle,
    db: &Path,
    listen: std::net::SocketAddr,
) -> guestlist_server::config::Config {
    let mut c = guestlist_server::config::Config::default();
    c.listen = listen;
    c.database = db.to_owned().into();
    c.connector.username = USER.into();
    c.connector.password = guestlist_server::config::Secret(PASS.into());
    c.admin_listen = Some(guestlist_server::edge::AdminListen::Off);
    c.approver_auth.issuer = Some(tenant.issuer());
    c.approver_auth.audiences = vec![
        defaults::API_CLIENT_ID.into(),
        defaults::API_APP_ID_URI.into(),
    ];
    c.approver_auth.required_scope = defaults::API_SCOPE.into();
    c.approver_auth.allowed_client_ids = vec![defaults::DESKTOP_CLIENT_ID.into()];
    c
}

impl Env {
    pub(crate) async fn start() -> Env {
        let tenant = DevTenant::start(DevTenantConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let server = guestlist_server::spawn(server_config(
            &tenant,
            &dir.path().join("server.db"),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
        let server_addr = server.addr();
        Env {
            tenant,
            server: Some(server),
            server_addr,
            dir,
        }
    }

    pub(crate) fn api(&self) -> String {
        format!("http://{}", self.server_addr)
    }

    pub(crate) async fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub(crate) async fn restart_server(&mut self) {
        let cfg = server_config(
            &self.tenant,
            &self.dir.path().join("server.db"),
            self.server_addr,
        );
        self.server = Some(guestlist_server::spawn(cfg).await.unwrap());
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            authority: self.tenant.issuer(),
            client_id: defaults::DESKTOP_CLIENT_ID.into(),
            api_base_url: self.api(),
            api_scope: defaults::API_SCOPE_FULL.into(),
            graph_base_url: self.tenant.graph_base(),
            graph_scopes: vec![
                "https://graph.microsoft.com/User.ReadWrite.All".into(),
                "https://graph.microsoft.com/User.Invite.All".into(),
            ],
            provisioning: ProvisioningSettings {
                tenant_domain: defaults::TENANT_DOMAIN.into(),
                upn_form: UpnForm::Seed,
                invite_redirect_url: "https://myapplications.microsoft.com".into(),
                send_invitation_message: false,
                extensions_app_id: Some(defaults::EXTENSIONS_APP_ID.into()),
            },
            do_not_disturb: false,
            purge_decided_after_days: 30,
            undo_seconds: 0,
        }
    }

    pub(crate) async fn reviewer(
        &self,
        name: &str,
        store: Arc<MemoryStore>,
        faults: Faults,
    ) -> Reviewer {
        Reviewer::open_with(
            &self.dir.path().join(name),
            Some(self.settings()),
            OpenOptions {
                token_store: Some(store),
                faults,
                outbox_worker: false,
            },
        )
        .await
        .unwrap()
    }

    /// Posts a "request approval" connector call (as Entra's user flow does).
    pub(crate) async fn request_approval(&self, claims: &Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}/connectors/request-approval", self.api()))
            .basic_auth(USER, Some(PASS))
            .json(claims)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    pub(crate) async fn check_status(&self, claims: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/connectors/check-approval-status", self.api()))
            .basic_auth(USER, Some(PASS))
            .json(claims)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) fn guests(&self) -> Vec<Value> {
        self.tenant
            .users()
            .into_iter()
            .filter(|u| u["userType"] == "Guest")
            .collect()
    }
}

/// Signs in as `upn` by driving the authorize URL with an HTTP client: devtenant signs in at
/// once with `login_hint` and redirects to our loopback listener.
pub(crate) async fn sign_in(r: &Reviewer, upn: &'static str) -> guestlist_reviewer::SessionInfo {
    r.sign_in(Box::new(move |url: &str| {
        let url = format!("{url}&login_hint={}", upn.replace('@', "%40"));
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(
                resp.status(),
                302,
                "devtenant signs in at once with login_hint"
            );
            let location = resp.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("http://127.0.0.1:"), "{location}");
            let page = http
                .get(&location)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(page.contains("close this tab"));
        });
        Ok(())
    }))
    .await
    .unwrap()
}

pub(crate) fn facebook(n: u32) -> Value {
    json!({
        "email": format!("fb{n}@fabrikam.com"),
        "identities": [{"signInType":"federated","issuer":"facebook.com","issuerAssignedId":format!("fb-id-{n}")}],
        "displayName": format!("Facebook User {n}"),
        "givenName": "Face", "surname": format!("Book{n}"),
        "city": "Seattle",
        "extension_<extensions-app-id>_CustomAttribute": "custom value",
        "ui_locales": "en-US"
    })
}

pub(crate) fn fixture(name: &str) -> Value {
    let p = format!("{}/fixtures/connector/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub(crate) async fn id_of(r: &Reviewer, email: &str) -> String {
    let v = r
        .queue(QueueQuery {
            q: Some(email.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(v.items.len(), 1, "{email} in the queue");
    v.items[0].id.clone()
}

#[tokio::test]
async fn sign_in_sync_approve_and_deny() {
    let env = Env::start().await;
    for n in 1..=3 {
        env.request_approval(&facebook(n)).await;
    }
    env.request_approval(&fixture("request-approval.request.azuread.json"))
        .await;
    let store = Arc::new(MemoryStore::new());
    let r = env.reviewer("ada", store.clone(), Faults::default()).await;
    let session = sign_in(&r, defaults::ADA_UPN).await;
    assert_eq!(session.username, defaults::ADA_UPN);
    assert!(
        session.roles.contains(&"Approver".to_string()),
        "{session:?}"
    );
    let refresh_account = guestlist_reviewer::auth::account_key(&r.settings());
    let refresh_token = |s: &MemoryStore| {
        guestlist_reviewer::TokenStore::load(s, &refresh_account)
            .unwrap()
            .is_some()
    };
    assert!(
        refresh_token(&store),
        "the refresh token is in the token store"
    );
    let rep = r.sync().await.unwrap();
    assert_eq!((rep.fetched, rep.added, rep.pending), (4, 4, 4));
    let again = r.sync().await.unwrap();
    assert_eq!(
        (again.added, again.updated, again.removed),
        (0, 0, 0),
        "incremental"
    );
    let st = r.status().await;
    assert!(st.online && st.session.is_some());
    assert_eq!(st.pending_count, 4);

    // Detail of a Facebook request: plan, rows, nothing in the directory yet.
    let fb1 = id_of(&r, "fb1@fabrikam.com").await;
    let d = r.detail(fb1.clone()).await.unwrap();
    assert!(d.directory.checked, "{:?}", d.directory.error);
    assert!(d.directory.matches.is_empty());
    let custom = d
        .rows
        .iter()
        .find(|x| x.attribute == "CustomAttribute")
        .unwrap();
    assert_eq!(custom.will_be_written, Some(json!("custom value")));
    assert_eq!(d.plan.as_ref().unwrap().kind, ProvisionedBy::UserCreated);

    // Approve the Facebook user: a guest with the identity and the seed's UPN form appears.
    let out = r.approve(vec![fb1.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    assert_eq!(out[0].how, Some(ProvisionedBy::UserCreated));
    let guest_id = out[0].directory_object_id.clone().unwrap();
    let guest = env.tenant.user(&guest_id).unwrap();
    assert_eq!(
        guest["userPrincipalName"],
        "fb1_fabrikam.com#EXT@contoso.onmicrosoft.com"
    );
    assert_eq!(guest["identities"][0]["issuer"], "facebook.com");
    assert_eq!(guest["identities"][0]["issuerAssignedId"], "fb-id-1");
    assert_eq!(
        guest[format!("extension_{}_CustomAttribute", defaults::EXTENSIONS_APP_ID)],
        "custom value"
    );
    match &out[0].current.as_ref().unwrap().state {
        RequestState::Approved {
            directory_object_id,
            how,
        } => {
            assert_eq!(directory_object_id.as_deref(), Some(guest_id.as_str()));
            assert_eq!(*how, ProvisionedBy::UserCreated);
        }
        s => panic!("{s:?}"),
    }
    // The detail knows the account is the one this approval created: no "existing account"
    // risk blaming it.
    let d = r.detail(fb1.clone()).await.unwrap();
    assert_eq!(
        d.outbox
            .as_ref()
            .and_then(|o| o.directory_object_id.clone()),
        Some(guest_id.clone())
    );
    assert!(
        !d.risks
            .iter()
            .any(|k| k.kind == guestlist_reviewer::RiskKind::ExistingAccount),
        "{:?}",
        d.risks
    );

    // Approve the Entra ID user: invitation + PATCH.
    let entra = id_of(&r, "johnsmith@fabrikam.onmicrosoft.com").await;
    let out = r.approve(vec![entra.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    assert_eq!(out[0].how, Some(ProvisionedBy::Invitation));
    let invited = env
        .tenant
        .user(out[0].directory_object_id.as_ref().unwrap())
        .unwrap();
    assert_eq!(
        invited["city"], "Redmond",
        "PATCH wrote the collected attributes"
    );
    assert_eq!(invited["displayName"], "John Smith");

    // Deny one; the check-status connector now blocks it as denied.
    let fb2 = id_of(&r, "fb2@fabrikam.com").await;
    let out = r
        .deny(vec![fb2.clone()], "unknown supplier".into())
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Done, "{out:?}");
    let cs = env.check_status(&facebook(2)).await;
    assert_eq!(cs["action"], "ShowBlockPage", "{cs}");
    assert!(
        cs["code"].as_str().unwrap().ends_with("APPROVAL-DENIED"),
        "{cs}"
    );
    let h = r.history(fb2.clone()).await.unwrap();
    assert!(h.iter().any(|e| e.action == "denied"), "{h:?}");

    let guests = env.guests();
    assert_eq!(guests.len(), 2, "exactly one account per approval");
    assert_eq!(r.status().await.pending_count, 1);
    r.sign_out(true).await.unwrap();
    assert!(!refresh_token(&store), "sign-out deleted the refresh token");
    assert!(r.status().await.session.is_none());
    assert_eq!(r.sync().await.unwrap_err().code, codes::NOT_SIGNED_IN);
}

#[tokio::test]
async fn crash_between_provisioning_and_reporting_creates_no_second_account() {
    let env = Env::start().await;
    env.request_approval(&facebook(10)).await;
    env.request_approval(&facebook(11)).await;
    let store = Arc::new(MemoryStore::new());
    let crashing = env
        .reviewer(
            "ada",
            store.clone(),
            Faults {
                crash_after: Some(OutboxState::Provisioned),
                ..Faults::default()
            },
        )
        .await;
    sign_in(&crashing, defaults::ADA_UPN).await;
    crashing.sync().await.unwrap();
    let id10 = id_of(&crashing, "fb10@fabrikam.com").await;
    let out = crashing.approve(vec![id10.clone()]).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Queued);
    assert_eq!(out[0].state, OutboxState::Provisioned);
    assert_eq!(env.guests().len(), 1);
    drop(crashing);
    // Crash right after the Graph write, before its id was saved.
    let id11 = {
        let r = env
            .reviewer(
                "ada",
                store.clone(),
                Faults {
                    crash_after_graph_write: true,
                    ..Faults::default()
                },
            )
            .await;
        let id11 = id_of(&r, "fb11@fabrikam.com").await;
        let out = r.approve(vec![id11.clone()]).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Queued);
        assert_eq!(
            out[0].state,
            OutboxState::Claimed,
            "the write happened but was not recorded"
        );
        id11
    };
    assert_eq!(env.guests().len(), 2);
    // Restart: the session is restored from the token store; draining finishes both.
    let r = env.reviewer("ada", store.clone(), Faults::default()).await;
    assert!(r.status().await.session.is_some());
    let items = r.drain().await.unwrap();
    assert!(
        items.iter().all(|i| i.state == OutboxState::Reported),
        "{items:?}"
    );
    assert_eq!(env.guests().len(), 2, "no second account");
    let out = r.approve(vec![id10.clone(), id11.clone()]).await.unwrap();
    assert!(out.iter().all(|o| o.outcome == Outcome::Done), "{out:?}");
    assert_eq!(
        out[1].how,
        Some(ProvisionedBy::UserCreated),
        "our own write, found by the look-up"
    );
    for id in [&id10, &id11] {
        let h = r.history(id.clone()).await.unwrap();
        assert_eq!(
            h.iter().filter(|e| e.action == "approved").count(),
            1,
            "{h:?}"
        );
    }
}

#[tokio::test]
async fn two_reviewers_race_and_the_loser_provisions_nothing() {
    let env = Env::start().await;
    env.request_approval(&facebook(20)).await;
    let a = env
        .reviewer("a", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    let b = env
        .reviewer("b", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&a, defaults::ADA_UPN).await;
    sign_in(&b, defaults::ADA_UPN).await;
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    let id = id_of(&a, "fb20@fabrikam.com").await;
    let da = a
        .deny(vec![id.clone()], "not a supplier".into())
        .await
        .unwrap();
    assert_eq!(da[0].outcome, Outcome::Done);
    let ob = b.approve(vec![id.clone()]).await.unwrap();
    assert_eq!(ob[0].outcome, Outcome::Conflict, "{ob:?}");
    assert_eq!(ob[0].error.as_ref().unwrap().code, codes::CONFLICT);
    assert!(ob[0].directory_object_id.is_none());
    assert!(matches!(
        ob[0].current.as_ref().unwrap().state,
        RequestState::Denied { .. }
    ));
    assert!(env.guests().is_empty(), "nothing provisioned by the loser");
    assert_eq!(
        b.queue(QueueQuery::default()).await.unwrap().total_pending,
        0
    );
    // A request that changed after B looked (the user signed up again with other claims)
    // is a version conflict, also before provisioning.
    env.request_approval(&facebook(21)).await;
    b.sync().await.unwrap();
    let id21 = id_of(&b, "fb21@fabrikam.com").await;
    let mut changed = facebook(21);
    changed["city"] = json!("Oslo");
    env.request_approval(&changed).await;
    let ob = b.approve(vec![id21]).await.unwrap();
    assert_eq!(ob[0].outcome, Outcome::Conflict, "{ob:?}");
    assert_eq!(ob[0].error.as_ref().unwrap().code, codes::VERSION_MISMATCH);
    assert!(
        env.guests().is_empty(),
        "nothing provisioned for a stale review"
    );
}

#[tokio::test]
async fn outbox_survives_the_server_going_away() {
    let mut env = Env::start().await;
    for n in 30..33 {
        env.request_approval(&facebook(n)).await;
    }
    let store = Arc::new(MemoryStore::new());
    let r = env.reviewer("ada", store.clone(), Faults::default()).await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let ids: Vec<String> = r
        .queue(QueueQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 3);
    env.stop_server().await;
    let out = r.approve(ids.clone()).await.unwrap();
    assert!(out.iter().all(|o| o.outcome == Outcome::Queued), "{out:?}");
    assert_eq!(out[0].error.as_ref().unwrap().code, codes::OFFLINE);
    let st = r.status().await;
    assert!(!st.online);
    assert_eq!(st.outbox.len(), 3);
    assert_eq!(r.sync().await.unwrap_err().code, codes::OFFLINE);
    assert_eq!(
        r.queue(QueueQuery::default()).await.unwrap().total_pending,
        3,
        "the cached queue still works"
    );
    assert!(env.guests().is_empty());
    drop(r);
    // Restart the app and the server (same database): sync drains the outbox, batched.
    env.restart_server().await;
    let r = env.reviewer("ada", store, Faults::default()).await;
    let rep = r.sync().await.unwrap();
    assert_eq!(rep.pending, 0, "{rep:?}");
    let st = r.status().await;
    assert!(st.online);
    assert!(
        st.outbox.iter().all(|o| o.state == OutboxState::Reported),
        "{:?}",
        st.outbox
    );
    assert_eq!(env.guests().len(), 3);
}

#[tokio::test]
async fn sync_of_many_requests_and_bulk_approve_with_batch() {
    let env = Env::start().await;
    let n = 300u32;
    let start = std::time::Instant::now();
    for i in 0..n {
        env.request_approval(&facebook(1000 + i)).await;
    }
    eprintln!("{n} connector calls: {:?}", start.elapsed());
    let r = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&r, defaults::ADA_UPN).await;
    let rep = r.sync().await.unwrap();
    assert_eq!(rep.fetched, u64::from(n));
    eprintln!(
        "sync of {n} requests: {} ms, {} pages",
        rep.duration_ms, rep.pages
    );
    let t = std::time::Instant::now();
    let v = r
        .queue(QueueQuery {
            q: Some("book1042".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    eprintln!("queue search over {n}: {:?}", t.elapsed());
    assert_eq!(v.total_matching, 1);
    let ids: Vec<String> = r
        .queue(QueueQuery {
            limit: Some(25),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    let t = std::time::Instant::now();
    let out = r.approve(ids).await.unwrap();
    eprintln!("bulk approve of 25 federated users: {:?}", t.elapsed());
    assert!(out.iter().all(|o| o.outcome == Outcome::Done), "{out:?}");
    assert_eq!(env.guests().len(), 25);
}

/// Bulk approval never creates a second account: a person whose e-mail already has an account
/// (found by the batched `mail in (…)` look-up) and one whose identity already has an account
/// under another e-mail (refused by the directory's uniqueness of identities, then found by the
/// one-by-one look-up) both get their existing account; everyone else gets a new guest.
#[tokio::test]
async fn bulk_approve_reuses_accounts_found_by_mail_or_refused_as_duplicates() {
    let env = Env::start().await;
    let n = 18u32;
    for i in 0..n {
        env.request_approval(&facebook(2000 + i)).await;
    }
    let token = env
        .tenant
        .mint_user_token(
            defaults::ADA_UPN,
            defaults::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All",
        )
        .unwrap();
    let g = guestlist_graph::GraphClient::new(guestlist_graph::GraphConfig::new(
        env.tenant.graph_base(),
    ))
    .unwrap();
    let existing = |upn: &str, mail: &str, issuer: &str, sub: &str| {
        json!({
            "userPrincipalName": upn, "accountEnabled": true, "mail": mail, "userType": "Guest",
            "displayName": "Existing", "identities": [{"signInType": "federated", "issuer": issuer, "issuerAssignedId": sub}]
        })
    };
    let by_mail = g
        .create_user(
            &token,
            &existing(
                "older_fabrikam.com#EXT@contoso.onmicrosoft.com",
                "fb2003@fabrikam.com",
                "google.com",
                "g-2003",
            ),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_identity = g
        .create_user(
            &token,
            &existing(
                "moved_fabrikam.com#EXT@contoso.onmicrosoft.com",
                "moved-away@fabrikam.com",
                "facebook.com",
                "fb-id-2011",
            ),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(env.guests().len(), 2);

    let r = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&r, defaults::ADA_UPN).await;
    r.sync().await.unwrap();
    let id_2003 = id_of(&r, "fb2003@fabrikam.com").await;
    let id_2011 = id_of(&r, "fb2011@fabrikam.com").await;
    let ids: Vec<String> = r
        .queue(QueueQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), n as usize);
    let out = r.approve(ids).await.unwrap();
    assert!(out.iter().all(|o| o.outcome == Outcome::Done), "{out:#?}");
    let of = |id: &str| out.iter().find(|o| o.id == id).unwrap();
    assert_eq!(of(&id_2003).directory_object_id.as_deref(), Some(&*by_mail));
    assert_eq!(of(&id_2003).how, Some(ProvisionedBy::ExistingAccount));
    assert_eq!(
        of(&id_2011).directory_object_id.as_deref(),
        Some(&*by_identity)
    );
    assert_eq!(of(&id_2011).how, Some(ProvisionedBy::ExistingAccount));
    assert_eq!(
        out.iter()
            .filter(|o| o.how == Some(ProvisionedBy::UserCreated))
            .count(),
        n as usize - 2
    );
    // Exactly one account per person: 16 new guests and the 2 that existed.
    let guests = env.guests();
    assert_eq!(guests.len(), n as usize, "{guests:#?}");
    for i in 0..n {
        let sub = format!("fb-id-{}", 2000 + i);
        let holders = guests
            .iter()
            .filter(|u| u["identities"].to_string().contains(&format!("\"{sub}\"")))
            .count();
        // fb2003's existing account (found by e-mail) is used as it is: no identity added.
        let expected = usize::from(i != 3);
        assert_eq!(holders, expected, "{sub} is on exactly {expected} account");
    }
}
