//! What the README and deploy/ promise, run for real: the PostgreSQL grants the README prints,
//! and the systemd unit's own arguments, environment and credentials (module docs of
//! [`super`]).

use super::*;

/// The `GRANT` statements of the README's PostgreSQL grants block (between
/// `<!-- grants:begin -->` and `<!-- grants:end -->`), for database `guestlist` and role
/// `guestlist_app`.
fn readme_grants() -> Vec<String> {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("README.md"),
    )
    .unwrap();
    let block = readme
        .split_once("<!-- grants:begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- grants:end -->"))
        .map(|(block, _)| block)
        .expect("README.md has no grants block");
    let grants: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GRANT "))
        .map(str::to_owned)
        .collect();
    assert!(!grants.is_empty(), "no GRANT in the README's grants block");
    grants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_runs_with_exactly_the_grants_the_readme_prints() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let id = std::process::id();
    let (db, role, password) = (
        format!("gl_grants_{id}"),
        format!("gl_app_{id}"),
        "grants-test-password",
    );
    // A database owned by the superuser and a role with nothing but the README's grants.
    cluster
        .psql(&format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'"
        ))
        .unwrap();
    cluster.psql(&format!("CREATE DATABASE {db}")).unwrap();
    let admin = cluster.superuser_url(&db);
    for grant in readme_grants() {
        let grant = grant
            .replace("guestlist_app", &role)
            .replace("DATABASE guestlist ", &format!("DATABASE {db} "));
        sql(&admin, &grant);
    }
    let url = format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{db}",
        cluster.port()
    );
    let dir = tempfile::tempdir().unwrap();
    // The first replica migrates the schema, the second finds it migrated.
    let a = Replica::start(&url, dir.path(), "r0").await;
    let b = Replica::start(&url, dir.path(), "r1").await;
    let client = http(CLIENT_TIMEOUT);
    let body = sign_up("grants@fabrikam.com");
    let (status, v) = connector(&client, &a.base(), "request-approval", &body).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (Some(200), Some("GUESTLIST-APPROVAL-REQUESTED"))
    );
    let (status, v) = connector(&client, &b.base(), "check-approval-status", &body).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (Some(200), Some("GUESTLIST-APPROVAL-PENDING"))
    );
    // The role owns what it created and is no superuser.
    let rows = sql(
        &admin,
        &format!("SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'"),
    );
    assert_eq!(rows, vec![vec!["f".to_owned()]]);
}

/// deploy/guestlist-server.service's `ExecStart` arguments, `Environment=` settings and
/// `LoadCredential=` names, with `%d` (the credentials directory) replaced by `creds`.
fn unit_settings(creds: &Path) -> (Vec<String>, Vec<(String, String)>, Vec<String>) {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("deploy/guestlist-server.service"),
    )
    .unwrap();
    let d = creds.to_str().unwrap();
    let mut args = Vec::new();
    let mut env = Vec::new();
    let mut credentials = Vec::new();
    for line in unit.lines() {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            args = cmd
                .split_whitespace()
                .skip(1)
                .map(|a| a.replace("%d", d))
                .collect();
        } else if let Some(kv) = line.strip_prefix("Environment=") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_owned(), v.replace("%d", d)));
        } else if let Some(c) = line.strip_prefix("LoadCredential=") {
            credentials.push(c.split_once(':').unwrap().0.to_owned());
        }
    }
    (args, env, credentials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_units_settings_run_a_replica_on_postgres() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    // What systemd would put in $CREDENTIALS_DIRECTORY: the files the unit loads, the
    // configuration being deploy/guestlist.toml with the PostgreSQL URL as its `database`.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("deploy/guestlist.toml"),
    )
    .unwrap();
    assert!(
        example.lines().any(|l| l.starts_with("database = ")),
        "deploy/guestlist.toml sets no database"
    );
    let config: String = example
        .lines()
        .map(|l| {
            if l.starts_with("database = ") {
                format!("database = \"{url}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(creds.join("guestlist.toml"), config).unwrap();
    std::fs::write(creds.join("connector-password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(creds.join("tombstone-key"), format!("{TOMBSTONE_KEY}\n")).unwrap();
    let (args, env, credentials) = unit_settings(&creds);
    assert_eq!(
        credentials,
        ["guestlist.toml", "connector-password", "tombstone-key"],
        "the unit's credentials changed: update this test and the README"
    );
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let port = free_port();
    let log = dir.path().join("unit.log");
    let mut child = Command::new(server_bin())
        .args(&args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .envs(env)
        // Only here: the example's admin listener port may be taken on a test machine.
        .env("GUESTLIST_ADMIN_LISTEN", "off")
        .current_dir(&state)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = http(CLIENT_TIMEOUT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the server exited with the unit's settings ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not ready after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, v) = connector(
        &client,
        &base,
        "request-approval",
        &sign_up("unit@fabrikam.com"),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, Some(200), "{v}");
    // The request is in PostgreSQL (the configuration's `database`), and nothing in the state
    // directory: no SQLite file was opened instead.
    assert_eq!(
        stored_per_email(&url, "unit@").get("unit@fabrikam.com"),
        Some(&1)
    );
    let files: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert!(
        files.is_empty(),
        "the server wrote to its state directory: {files:?}"
    );
}
