//! The lock protocol against the in-memory store: mutual exclusion under
//! random interleavings, takeover of stale holders, stop requests, and a
//! lost lock.
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
    Request {
        key: key(),
        holder,
        wait,
        preempt: None,
        preempt_grace: Duration::from_secs(5),
        timing: fast(),
    }
}

#[test]
fn keys_are_lower_case_and_ref_safe() {
    let k = LockKey::azure("SUB", "rg Contoso", "app.(x)");
    assert_eq!(k.path, "sub/rg-contoso/app--x-");
    assert_eq!(k.display, "app.(x)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_run_ever_holds_the_lock() {
    // 100 trials of 2–4 runs started at random offsets: at no moment do two
    // of them believe they hold it, and every one gets it in turn.
    for trial in 0..100 {
        let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(offset)).await;
                let (guard, _) = Guard::acquire(
                    store,
                    req(me(&format!("run{i}"), false), Duration::from_secs(10)),
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

#[tokio::test]
async fn a_busy_lock_is_a_clear_error_after_the_wait() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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

#[tokio::test]
async fn a_stale_holder_is_taken_over_with_its_intent() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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

#[tokio::test]
async fn an_emergency_rollback_asks_a_deploy_to_stop_and_gets_the_lock() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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

#[tokio::test]
async fn a_rollback_is_not_preempted_by_another() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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

#[tokio::test]
async fn a_holder_whose_lock_was_taken_finds_out_and_never_releases_it() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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

#[tokio::test]
async fn the_post_stage_continues_as_the_holder() {
    let store = Store::Memory(Arc::new(memory::MemoryStore::default()));
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
