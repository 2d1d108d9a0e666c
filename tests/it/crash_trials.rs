//! The crash-trial loop (issue 5): the reviewer runs as a separate process
//! (`guestlist-crash-trial`) that is killed with `SIGKILL` right after it persisted each step of
//! a decision's state machine in turn (a loop over steps, for a created account, an invitation
//! and a denial, plus the instant after a Graph write answered), then in seeded randomized trials
//! (several decisions at once, batched, killed once or twice at random writes, after the Graph
//! write, or at an arbitrary instant — mid-HTTP call or mid-transaction). After every kill
//! the decision is resumed by a fresh in-process reviewer on the same data directory, and each
//! time there must be exactly one guest account per approval in devtenant (none per denial) and
//! exactly one reported decision on the server.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use guestlist_reviewer::{Faults, OpenOptions, OutboxState, Reviewer, codes};
use guestlist_tests::FileStore;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::reviewer::{Env, facebook, fixture, id_of, sign_in};
use guestlist_devtenant::defaults;

const BIN: &str = env!("CARGO_BIN_EXE_guestlist-crash-trial");

/// A fault of the test, not of the helper: kill it after this many milliseconds.
const KILL_AFTER_MS: &str = "KILL_AFTER_MS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Facebook (federated) user: `POST /users`.
    Create,
    /// An Entra ID user: `POST /invitations` + `PATCH /users/{id}`.
    Invite,
    /// A denial: no Graph call.
    Deny,
}

struct Decision {
    id: String,
    email: String,
    kind: Kind,
}

/// How a helper run ended.
#[derive(Debug)]
enum Run {
    /// Killed at `CRASH <at>`.
    Killed(String),
    /// Finished by itself (exit 0).
    Finished,
}

struct Trials {
    env: Env,
    dir: PathBuf,
    tokens: PathBuf,
    next: u32,
    kills: u32,
    /// Kills at an arbitrary instant ([`KILL_AFTER_MS`]) that hit a running helper.
    instant_kills: u32,
    /// Resumes that had to sign in again (killed during a refresh-token rotation).
    re_sign_ins: std::cell::Cell<u32>,
}

impl Trials {
    async fn new() -> Trials {
        let env = Env::start().await;
        let dir = env.dir.path().join("crash");
        let tokens = env.dir.path().join("tokens.json");
        let t = Trials {
            env,
            dir,
            tokens,
            next: 0,
            kills: 0,
            instant_kills: 0,
            re_sign_ins: Default::default(),
        };
        let r = t.reviewer().await;
        sign_in(&r, defaults::ADA_UPN).await;
        t
    }

    async fn reviewer(&self) -> Reviewer {
        Reviewer::open_with(
            &self.dir,
            Some(self.env.settings()),
            OpenOptions {
                token_store: Some(Arc::new(FileStore::new(&self.tokens))),
                faults: Faults::default(),
                outbox_worker: false,
            },
        )
        .await
        .unwrap()
    }

    /// New pending requests of these kinds, synced into the reviewer's cache.
    async fn requests(&mut self, kinds: &[Kind]) -> Vec<Decision> {
        let mut out = Vec::new();
        for &kind in kinds {
            self.next += 1;
            let n = 5000 + self.next;
            let claims = match kind {
                Kind::Create | Kind::Deny => facebook(n),
                Kind::Invite => {
                    let mut c = fixture("request-approval.request.azuread.json");
                    c["email"] = json!(format!("crash{n}@fabrikam.onmicrosoft.com"));
                    c["displayName"] = json!(format!("Crash Trial {n}"));
                    c
                }
            };
            self.env.request_approval(&claims).await;
            out.push(Decision {
                id: String::new(),
                email: claims["email"].as_str().unwrap().to_owned(),
                kind,
            });
        }
        let r = self.reviewer().await;
        r.sync().await.unwrap();
        for d in out.iter_mut() {
            d.id = id_of(&r, &d.email).await;
        }
        out
    }

    /// Runs the helper process on the data directory; kills it with SIGKILL when it reports a
    /// crash point.
    /// `decide`: false → the helper only drains (an app restarted after a crash).
    async fn run(&mut self, decisions: &[Decision], decide: bool, fault: (&str, String)) -> Run {
        let args = decisions.iter().filter(|_| decide).map(|d| match d.kind {
            Kind::Deny => format!("deny={}", d.id),
            _ => format!("approve={}", d.id),
        });
        let mut child = tokio::process::Command::new(BIN)
            .arg(&self.dir)
            .arg(&self.tokens)
            .args(args)
            .env(fault.0, &fault.1)
            .env_remove("GUESTLIST_SETTINGS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        // `KILL_AFTER_MS`: no crash point; SIGKILL at an arbitrary instant (mid-HTTP call, mid
        // transaction…) unless the run finished first.
        let kill_after =
            (fault.0 == KILL_AFTER_MS).then(|| Duration::from_millis(fault.1.parse().unwrap()));
        let crash = tokio::time::timeout(Duration::from_secs(30), async {
            let reading = async {
                while let Some(line) = stderr.next_line().await.unwrap() {
                    if let Some(at) = line.strip_prefix("CRASH ") {
                        return Some(at.to_owned());
                    }
                    seen.push(line);
                }
                None
            };
            match kill_after {
                Some(after) => tokio::select! {
                    r = reading => r,
                    _ = tokio::time::sleep(after) => Some(format!("after {} ms", after.as_millis())),
                },
                None => reading.await,
            }
        })
        .await
        .expect("the helper neither crashed nor finished in 30 s");
        match crash {
            Some(at) => {
                let _ = child.start_kill(); // SIGKILL
                let status = child.wait().await.unwrap();
                use std::os::unix::process::ExitStatusExt;
                if kill_after.is_some() && status.signal().is_none() {
                    // It finished just before the kill.
                    assert!(status.success(), "{status}: {}", seen.join("\n"));
                    return Run::Finished;
                }
                assert_eq!(status.signal(), Some(9), "killed at {at}");
                self.kills += 1;
                if kill_after.is_some() {
                    self.instant_kills += 1;
                }
                Run::Killed(at)
            }
            None => {
                let status = child.wait().await.unwrap();
                let mut out = String::new();
                child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .await
                    .unwrap();
                assert!(status.success(), "{status}: {}\n{out}", seen.join("\n"));
                Run::Finished
            }
        }
    }

    /// Resumes in-process (a decision the killed process never queued is made again, as the
    /// approver would: it is still in the queue), then checks the directory and the server for
    /// each decision.
    async fn resume_and_check(&self, decisions: &[Decision], context: &str) {
        let r = self.reviewer().await;
        let queued = r.status().await.outbox;
        let missing = |kind: Kind| -> Vec<String> {
            decisions
                .iter()
                .filter(|d| (d.kind == Kind::Deny) == (kind == Kind::Deny))
                .filter(|d| !queued.iter().any(|i| i.request_id == d.id))
                .map(|d| d.id.clone())
                .collect()
        };
        let (approve, deny) = (missing(Kind::Create), missing(Kind::Deny));
        if !approve.is_empty() {
            r.approve(approve).await.unwrap();
        }
        if !deny.is_empty() {
            r.deny(deny, "crash trial".into()).await.unwrap();
        }
        let mut items = r.drain().await.unwrap();
        if items.iter().any(|i| {
            i.last_error
                .as_ref()
                .is_some_and(|e| e.code == codes::NOT_SIGNED_IN)
        }) {
            // Killed while the refresh token rotated: the new one was never saved and devtenant
            // revoked the old one. The outbox is kept and the app asks to sign in again.
            sign_in(&r, defaults::ADA_UPN).await;
            self.re_sign_ins.set(self.re_sign_ins.get() + 1);
            items = r.drain().await.unwrap();
        }
        assert!(
            items.iter().all(|i| i.state == OutboxState::Reported),
            "{context}: {items:?}"
        );
        let status = r.status().await;
        for d in decisions {
            let item = status
                .outbox
                .iter()
                .find(|i| i.request_id == d.id)
                .unwrap_or_else(|| panic!("{context}: {} not in the outbox", d.email));
            assert_eq!(item.state, OutboxState::Reported, "{context}: {item:?}");
            let accounts: Vec<Value> = self
                .env
                .guests()
                .into_iter()
                .filter(|u| u["mail"] == d.email.as_str())
                .collect();
            let want = usize::from(d.kind != Kind::Deny);
            assert_eq!(accounts.len(), want, "{context}: accounts of {}", d.email);
            let history = r.history(d.id.clone()).await.unwrap();
            let action = if d.kind == Kind::Deny {
                "denied"
            } else {
                "approved"
            };
            let reported: Vec<_> = history
                .iter()
                .filter(|e| e.action == "approved" || e.action == "denied")
                .collect();
            assert_eq!(reported.len(), 1, "{context}: {history:?}");
            assert_eq!(reported[0].action, action, "{context}: {history:?}");
        }
    }
}

/// xorshift64*: a seeded, dependency-free PRNG for reproducible trials.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[tokio::test]
async fn kill_9_at_every_step_then_resume_provisions_exactly_once() {
    let start = Instant::now();
    let mut t = Trials::new().await;
    let mut step_trials = 0u32;

    // 1. A loop over the steps: kill after the 1st persisted write, then after the 2nd, … until
    //    a run finishes without reaching the crash point.
    let expected: [(Kind, &[&str]); 3] = [
        (
            Kind::Create,
            &["Queued", "Claimed", "Claimed", "Provisioned", "Reported"],
        ),
        (
            Kind::Invite,
            &[
                "Queued",
                "Claimed",
                "Claimed",
                "Invited",
                "Provisioned",
                "Reported",
            ],
        ),
        (Kind::Deny, &["Queued", "Claimed", "Reported"]),
    ];
    for (kind, states) in expected {
        let mut walked = Vec::new();
        for n in 1.. {
            let d = t.requests(&[kind]).await;
            match t
                .run(&d, true, ("GUESTLIST_CRASH_AFTER_WRITES", n.to_string()))
                .await
            {
                Run::Killed(at) => {
                    assert!(at.starts_with(&format!("write={n} ")), "{at}");
                    walked.push(at.rsplit("state=").next().unwrap().to_owned());
                    step_trials += 1;
                }
                Run::Finished => {}
            }
            t.resume_and_check(&d, &format!("{kind:?}, killed after write {n}"))
                .await;
            if walked.len() < n {
                break;
            }
        }
        assert_eq!(walked, states, "the persisted steps of a {kind:?} decision");
        if kind != Kind::Deny {
            // The worst case: the Graph write answered, its id not yet saved.
            let d = t.requests(&[kind]).await;
            let run = t
                .run(&d, true, ("GUESTLIST_CRASH_AT_GRAPH_WRITE", "1".into()))
                .await;
            assert!(
                matches!(&run, Run::Killed(at) if at.starts_with("graph_write")),
                "{run:?}"
            );
            step_trials += 1;
            t.resume_and_check(&d, &format!("{kind:?}, killed after the Graph write"))
                .await;
        }
    }

    // 2. Seeded randomized trials: 1–4 decisions at once (several federated approvals share
    //    $batch calls), killed once or twice at a random write, after the Graph write, or at
    //    an arbitrary instant.
    let seed: u64 = std::env::var("GUESTLIST_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    let mut rng = Rng(seed | 1);
    let random_trials = 100;
    for trial in 0..random_trials {
        let kinds: Vec<Kind> = (0..=rng.below(4))
            .map(|_| match rng.below(3) {
                0 => Kind::Create,
                1 => Kind::Invite,
                _ => Kind::Deny,
            })
            .collect();
        let d = t.requests(&kinds).await;
        let mut kills = Vec::new();
        for again in 0..=rng.below(2) {
            let fault = if rng.below(5) == 0 {
                ("GUESTLIST_CRASH_AT_GRAPH_WRITE", "1".to_owned())
            } else if rng.below(4) == 0 {
                (KILL_AFTER_MS, rng.below(250).to_string())
            } else {
                (
                    "GUESTLIST_CRASH_AFTER_WRITES",
                    (1 + rng.below(6 * kinds.len() as u64)).to_string(),
                )
            };
            match t.run(&d, again == 0, fault).await {
                Run::Killed(at) => kills.push(at),
                Run::Finished => break,
            }
        }
        t.resume_and_check(
            &d,
            &format!("random trial {trial} (seed {seed:#x}): {kinds:?}, killed at {kills:?}"),
        )
        .await;
    }
    eprintln!(
        "crash trials: {} kill -9 ({step_trials} step by step, the rest in {random_trials} \
         randomized trials, {} of them at an arbitrary instant, seed {seed:#x}), {} decisions, \
         {} resumes signed in again, in {:.1} s",
        t.kills,
        t.instant_kills,
        t.next,
        t.re_sign_ins.get(),
        start.elapsed().as_secs_f64()
    );
}
