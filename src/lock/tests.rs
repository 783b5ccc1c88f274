//! The lock protocol against the in-memory store and against Kubernetes
//! Leases on the sandbox's API server (each test runs on both): mutual
//! exclusion under random interleavings, takeover of stale holders, stop
//! requests, a lost lock, the post stage continuing as the holder.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;

use super::*;

fn me(name: &str, preemptible: bool) -> Holder {
    Holder {
        id: format!("{name}-id"),
        who: name.into(),
        command: format!("{name}'s command"),
        url: None,
        run: None,
        preemptible,
    }
}

fn key() -> LockKey {
    LockKey::azure("SUB", "rg-Contoso", "app-contoso-payments")
}

fn fast() -> Timing {
    Timing {
        ttl: Duration::from_secs(30),
        poll: Duration::from_millis(5),
    }
}

fn req(holder: Holder, wait: Duration) -> Request {
    req_for(key(), holder, wait)
}

fn req_for(key: LockKey, holder: Holder, wait: Duration) -> Request {
    Request {
        key,
        holder,
        wait,
        preempt: None,
        preempt_grace: Duration::from_secs(5),
        timing: fast(),
    }
}

/// Where a protocol test keeps its locks.
enum Backend {
    Memory,
    Lease,
}

/// A fresh store (and the sandbox that serves it, kept alive by the caller).
async fn store_for(b: Backend) -> (Store, Option<expedite_sandbox::Sandbox>) {
    match b {
        Backend::Memory => (
            Store::Memory(Arc::new(memory::MemoryStore::default())),
            None,
        ),
        Backend::Lease => {
            let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
                .await
                .unwrap();
            let kube = crate::kube::Kube::connect(
                &crate::kube::Source::Path(sb.settings().kubeconfig_path.clone()),
                None,
            )
            .unwrap();
            (
                Store::Lease(lease::LeaseStore::new(kube, "default")),
                Some(sb),
            )
        }
    }
}

/// Runs a protocol test's body on both stores.
macro_rules! on_both_stores {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                let (store, _sandbox) = store_for(Backend::Memory).await;
                $body(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lease() {
                let (store, _sandbox) = store_for(Backend::Lease).await;
                $body(store).await;
            }
        }
    };
}

#[test]
fn keys_are_lower_case_and_ref_safe() {
    let k = LockKey::azure("SUB", "rg Contoso", "app.(x)");
    assert_eq!(k.path, "sub/rg-contoso/app--x-");
    assert_eq!(k.display, "app.(x)");
}

on_both_stores!(only_one_run_ever_holds_the_lock, mutual_exclusion);

async fn mutual_exclusion(store: Store) {
    // 100 trials of 2–4 runs started at random offsets (each trial its own
    // lock): at no moment do two of them believe they hold it, and every
    // one gets it in turn.
    for trial in 0..100 {
        let key = LockKey::azure("sub", "rg", &format!("app-{trial}"));
        let inside = Arc::new(AtomicUsize::new(0));
        let worst = Arc::new(AtomicUsize::new(0));
        let runs = rand::rng().random_range(2..=4);
        let mut tasks = Vec::new();
        for i in 0..runs {
            let store = store.clone();
            let inside = inside.clone();
            let worst = worst.clone();
            let offset = rand::rng().random_range(0..5u64);
            let hold = rand::rng().random_range(0..3u64);
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(offset)).await;
                let (guard, _) = Guard::acquire(
                    store,
                    req_for(key, me(&format!("run{i}"), false), Duration::from_secs(10)),
                    &Cancel::new(),
                    |_| {},
                )
                .await
                .unwrap();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                worst.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                guard.release(None).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(worst.load(Ordering::SeqCst), 1, "trial {trial}");
    }
}

on_both_stores!(a_busy_lock_is_a_clear_error_after_the_wait, busy_lock);

async fn busy_lock(store: Store) {
    let (_a, _) = Guard::acquire(
        store.clone(),
        req(me("alice", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    let mut heard = Vec::new();
    let e = Guard::acquire(
        store,
        req(me("bob", false), Duration::from_millis(50)),
        &Cancel::new(),
        |news| heard.push(news_text(news)),
    )
    .await
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("another run holds the deploy lock of app-contoso-payments")
            && text.contains("alice's command by alice")
            && text.contains("Nothing was changed"),
        "{text}"
    );
    // Said once; every later poll is a status update with the time spent
    // and the time it may take in all.
    let said: Vec<_> = heard.iter().filter(|h| !h.starts_with("status")).collect();
    assert_eq!(said.len(), 1, "said once: {heard:?}");
    assert!(said[0].contains("waiting for alice's command"), "{heard:?}");
    assert!(
        heard.len() >= 2,
        "no status update while waiting: {heard:?}"
    );
    assert!(
        heard[1..].iter().all(|h| h.starts_with("status")
            && h.contains("alice's command")
            && h.ends_with("of 50 ms")),
        "{heard:?}"
    );
}

fn news_text(news: LockNews<'_>) -> String {
    match news {
        LockNews::Said(s) => s.to_string(),
        LockNews::Waiting {
            holder,
            waited,
            at_most,
        } => format!(
            "status: {holder} {} ms of {} ms",
            waited.as_millis(),
            at_most.as_millis()
        ),
    }
}

on_both_stores!(a_stale_holder_is_taken_over_with_its_intent, stale_takeover);

async fn stale_takeover(store: Store) {
    let mut r = req(me("alice", true), Duration::ZERO);
    r.timing.ttl = Duration::from_millis(1);
    let (a, _) = Guard::acquire(store.clone(), r, &Cancel::new(), |_| {})
        .await
        .unwrap();
    a.write_intent(serde_json::json!({"phase": "swap"}))
        .await
        .unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_b, got) = Guard::acquire(
        store,
        req(me("bob", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(got.took_over.unwrap().contains("expired"));
    assert_eq!(
        got.previous.unwrap().intent,
        Some(serde_json::json!({"phase": "swap"}))
    );
}

#[tokio::test]
async fn a_finished_workflow_run_is_stale_at_once() {
    let mem = Arc::new(memory::MemoryStore::default());
    let store = Store::Memory(mem.clone());
    let mut alice = me("alice", false);
    alice.run = Some(ActionsRun {
        repository: "contoso/payments".into(),
        run_id: 7,
        attempt: 1,
    });
    let (_a, _) = Guard::acquire(
        store.clone(),
        req(alice, Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    mem.finish_run(7);
    let (_b, got) = Guard::acquire(
        store,
        req(me("bob", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(got.took_over.unwrap().contains("has finished"));
}

on_both_stores!(
    an_emergency_rollback_asks_a_deploy_to_stop_and_gets_the_lock,
    emergency_stop
);

async fn emergency_stop(store: Store) {
    let (deploy, _) = Guard::acquire(
        store.clone(),
        req(me("deploy", true), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    let cancel = Cancel::new();
    deploy.watch(&cancel);
    // The deploy stops when asked, restores (here: a moment), releases.
    let d = deploy.clone();
    let c = cancel.clone();
    let holder = tokio::spawn(async move {
        c.cancelled().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        d.release(Some(serde_json::json!({"outcome": "preempted"})))
            .await
            .unwrap();
        c.reason()
    });
    let mut r = req(me("rollback", false), Duration::from_secs(5));
    r.preempt = Some("checkout is down".into());
    let (_rb, got) = Guard::acquire(store, r, &Cancel::new(), |_| {})
        .await
        .unwrap();
    let reason = holder.await.unwrap();
    assert!(
        matches!(&reason, Some(CancelReason::Preempted(why)) if why.contains("rollback") && why.contains("checkout is down")),
        "{reason:?}"
    );
    assert!(got.preempted.unwrap().contains("deploy"));
    assert_eq!(
        got.previous.unwrap().intent,
        Some(serde_json::json!({"outcome": "preempted"}))
    );
    assert!(got.took_over.is_none(), "released, not taken over");
}

on_both_stores!(
    a_rollback_is_not_preempted_by_another,
    rollback_not_preempted
);

async fn rollback_not_preempted(store: Store) {
    let (first, _) = Guard::acquire(
        store.clone(),
        req(me("first", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    let cancel = Cancel::new();
    first.watch(&cancel);
    let mut r = req(me("second", false), Duration::from_millis(100));
    r.preempt = Some("again".into());
    assert!(matches!(
        Guard::acquire(store, r, &Cancel::new(), |_| {}).await,
        Err(LockError::Busy { .. })
    ));
    assert!(!cancel.is_cancelled());
}

on_both_stores!(
    a_holder_whose_lock_was_taken_finds_out_and_never_releases_it,
    lost_lock
);

async fn lost_lock(store: Store) {
    let mut r = req(me("alice", true), Duration::ZERO);
    r.timing.ttl = Duration::from_millis(1);
    let (a, _) = Guard::acquire(store.clone(), r, &Cancel::new(), |_| {})
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_b, _) = Guard::acquire(
        store.clone(),
        req(me("bob", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    let cancel = Cancel::new();
    a.watch(&cancel);
    tokio::time::timeout(Duration::from_secs(5), cancel.cancelled())
        .await
        .unwrap();
    assert!(matches!(cancel.reason(), Some(CancelReason::LockLost(who)) if who.contains("bob")));
    assert!(matches!(a.release(None).await, Err(LockError::Lost { .. })));
    // Bob still holds it.
    let e = Guard::acquire(
        store,
        req(me("carol", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("bob"), "{e}");
}

on_both_stores!(the_post_stage_continues_as_the_holder, post_stage);

async fn post_stage(store: Store) {
    let (a, _) = Guard::acquire(
        store.clone(),
        req(me("main", true), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    a.write_intent(serde_json::json!({"phase": "canary-watch"}))
        .await
        .unwrap();
    let handle = a.handle().await;
    drop(a); // the main stage was killed
    let (post, previous) = Guard::resume(store.clone(), &handle, fast()).await.unwrap();
    assert_eq!(
        previous.unwrap().intent,
        Some(serde_json::json!({"phase": "canary-watch"})),
        "still ours, with its intent"
    );
    post.release(None).await.unwrap();
    // Someone else's now: resuming is refused.
    let (_b, _) = Guard::acquire(
        store.clone(),
        req(me("bob", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(
        Guard::resume(store, &handle, fast()).await,
        Err(LockError::Lost { .. })
    ));
}

#[test]
fn lease_names_are_valid_stable_and_distinct() {
    let a = lease::lease_name(&key());
    assert_eq!(a, lease::lease_name(&key()));
    assert!(a.starts_with("expedite-lock-") && a.len() <= 253, "{a}");
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{a}"
    );
    let long = LockKey::azure("sub", "rg", &"x".repeat(300));
    let b = lease::lease_name(&long);
    assert!(b.len() <= 253 && b != a, "{b}");
    let near = LockKey::azure("sub", "rg", "app-contoso-payments2");
    assert_ne!(lease::lease_name(&near), a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_expedite_did_not_write_is_refused_with_the_command_that_clears_it() {
    let (store, sandbox) = store_for(Backend::Lease).await;
    let sb = sandbox.unwrap();
    let kube = crate::kube::Kube::connect(
        &crate::kube::Source::Path(sb.settings().kubeconfig_path.clone()),
        None,
    )
    .unwrap();
    kube.create(
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        &serde_json::json!({"metadata": {"name": lease::lease_name(&key())},
                            "spec": {"holderIdentity": "someone-else"}}),
        &Cancel::new(),
    )
    .await
    .unwrap();
    let e = Guard::acquire(
        store,
        req(me("alice", false), Duration::ZERO),
        &Cancel::new(),
        |_| {},
    )
    .await
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("has no expedite.dev/lock-record annotation")
            && text.contains(&format!(
                "kubectl --context sandbox -n default delete lease {}",
                lease::lease_name(&key())
            )),
        "{text}"
    );
}
