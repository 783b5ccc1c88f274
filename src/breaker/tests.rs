use super::sim::{self, Scenario};
use super::split::{ClumpCount, Counted, FailureSplit, Grow2x2, Pair};
use super::sprt::{GridMixture, Sprt, kl_bernoulli};
use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn canary(requests: u64, failures: u64) -> Arm {
    Arm {
        requests,
        failures,
        slow: None,
    }
}

fn batch(start: f64, end: f64, c: Arm, b: Option<Arm>) -> Batch {
    Batch {
        start,
        end,
        canary: c,
        baseline: b,
    }
}

#[test]
// 2.3026 is the reference's printed increment (ln 10), checked as printed.
#[allow(clippy::approx_constant)]
fn sprt_worked_numbers_match_the_reference() {
    let s = Sprt::new(0.001, 0.01, 0.01, 0.01);
    assert!(close(s.a, 2.3026, 1e-4), "{}", s.a);
    assert!(close(s.b, -0.00905, 1e-5), "{}", s.b);
    assert!(close(s.upper, 4.595, 1e-3) && close(s.lower, -4.595, 1e-3));
    // Two failures in the first three requests reach ln A; one failure in 3 does not.
    assert!(s.increment(2, 1) >= s.upper - SLACK);
    assert!(s.increment(1, 2) < s.upper);
    // Parallel-lines form: 3 failures within 258 requests trip, at 259 they do not.
    assert!(s.increment(3, 255) >= s.upper);
    assert!(s.increment(3, 257) < s.upper);
    // Passes after 508 clean requests, not 507.
    assert!(s.increment(0, 508) <= s.lower && s.increment(0, 507) > s.lower);
    assert_eq!(Settings::default().suggested_min_requests(), 508);
    assert_eq!(Settings::default().min_requests, 508);
    // KL numbers of §2.1.
    assert!(close(kl_bernoulli(0.01, 0.001), 0.01407, 1e-5));
    assert!(close(kl_bernoulli(0.001, 0.01), 0.00674, 1e-5));
}

#[test]
fn boundary_counts_as_crossing() {
    // 2·ln 10 == ln 100 up to rounding; the slack makes it a trip at α = 1 %.
    let s = Sprt::new(0.001, 0.01, 0.01, 0.01);
    let trip_only = (1.0f64 / 0.01).ln();
    assert!(s.increment(2, 0) >= trip_only - SLACK);
}

#[test]
fn grid_mixture_price_and_bulk_exactness() {
    let mut g = GridMixture::new(0.001, &[0.003, 0.01, 0.03, 0.1, 0.3, 0.9]);
    g.update(1, 0);
    // Reference: the 90 % component alone gives 900/6 = 150 on the first failure.
    let e: f64 = [3.0, 10.0, 30.0, 100.0, 300.0, 900.0].iter().sum::<f64>() / 6.0;
    assert!(close(g.current(), e.ln(), 1e-9));
    assert!(g.current() > 100f64.ln());
    // Bulk updates equal one-at-a-time updates.
    let mut a = GridMixture::new(0.001, &[0.01, 0.1]);
    let mut b = a.clone();
    a.update(3, 400);
    for _ in 0..400 {
        b.update(0, 1);
    }
    for _ in 0..3 {
        b.update(1, 0);
    }
    assert!(close(a.current(), b.current(), 1e-9));
}

#[test]
fn failure_split_worked_numbers() {
    let f = FailureSplit { rho1: 10.0 };
    assert!(close(f.pi1(0.1), 0.526, 5e-4), "{}", f.pi1(0.1));
    let canary_fail = f.increment(Pair {
        n_c: 10,
        x_c: 1,
        n_b: 90,
        x_b: 0,
    });
    let base_fail = f.increment(Pair {
        n_c: 10,
        x_c: 0,
        n_b: 90,
        x_b: 1,
    });
    assert!(close(canary_fail, 1.66, 5e-3), "{canary_fail}");
    assert!(close(base_fail, -0.64, 5e-3), "{base_fail}");
    // Three canary failures in a row: 4.98 ≥ ln(1/0.01).
    assert!(3.0 * canary_fail >= 100f64.ln());
    // No evidence when an arm is empty.
    assert_eq!(
        f.increment(Pair {
            n_c: 0,
            x_c: 0,
            n_b: 90,
            x_b: 3
        }),
        0.0
    );
    assert_eq!(
        f.increment(Pair {
            n_c: 5,
            x_c: 5,
            n_b: 0,
            x_b: 0
        }),
        0.0
    );
}

#[test]
fn grow_2x2_is_an_e_value_for_every_common_rate() {
    // E_p[e] ≤ 1 for all p: exact sum over the binomial outcomes of a small table.
    let (n_c, n_b) = (3u64, 17u64);
    let binom = |n: u64, k: u64, p: f64| {
        let mut c = 1.0;
        for i in 0..k {
            c *= (n - i) as f64 / (i + 1) as f64;
        }
        c * p.powi(k as i32) * (1.0 - p).powi((n - k) as i32)
    };
    for &q_c in &[0.01, 0.1, 0.9] {
        let g = Grow2x2 { q_c };
        for &p in &[1e-4, 0.001, 0.01, 0.05, 0.2, 0.5, 0.9] {
            let mut mean = 0.0;
            for x_c in 0..=n_c {
                for x_b in 0..=n_b {
                    let e = g.increment(Pair { n_c, x_c, n_b, x_b }, 0.001).exp();
                    mean += binom(n_c, x_c, p) * binom(n_b, x_b, p) * e;
                }
            }
            assert!(mean <= 1.0 + 1e-9, "q_c={q_c} p={p} E={mean}");
        }
    }
    // A canary outage against a clean baseline earns more than the split's ln(1+n_b).
    let e = Grow2x2 { q_c: 0.9 }.increment(
        Pair {
            n_c: 1,
            x_c: 1,
            n_b: 9,
            x_b: 0,
        },
        0.001,
    );
    assert!(e > 10f64.ln() + 0.5, "{e}");
}

/// A total outage trips within three failed requests, with failures
/// counted as independent and counted as clumps (production has shown no
/// failures yet, so the clump index is still its prior) — never waiting
/// for `min_requests`. (Tempering every failure by the prior took four.)
#[test]
fn outage_trips_within_three_requests_and_never_waits_for_min_requests() {
    for (independent_failures, most) in [(true, 3), (false, 3)] {
        let mut b = Breaker::new(Settings {
            min_requests: 100_000,
            independent_failures,
            ..Settings::default()
        })
        .unwrap();
        b.begin_step(0.0);
        let mut tripped_at = None;
        for i in 0..10 {
            let t = i as f64;
            let v = b.observe(&batch(t, t + 0.5, canary(1, 1), Some(canary(9, 0))));
            if let Verdict::Trip(trip) = v {
                tripped_at = Some((i + 1, trip));
                break;
            }
        }
        let (n, trip) = tripped_at.expect("an outage must trip");
        assert!(n <= most, "tripped after {n} failed requests");
        assert!(matches!(
            trip.test,
            TestKind::ErrorRate | TestKind::FailureSplit
        ));
        assert!(trip.statistic >= trip.threshold - SLACK);
        // Stays tripped with the same Trip.
        let again = b.observe(&batch(20.0, 21.0, canary(100, 0), Some(canary(900, 0))));
        assert_eq!(again, Verdict::Trip(trip.clone()));
        assert_eq!(b.evidence().tripped, Some(trip));
        assert_eq!(b.judge(1e6, 1.0), Judgement::Continue);
    }
}

#[test]
fn without_baseline_two_failures_in_three_requests_trip() {
    // One-sample only; 2 failures of the first 3 requests trip (as the SPRT).
    let mut b = Breaker::new(Settings::default()).unwrap();
    assert_eq!(
        b.observe(&batch(0.0, 1.0, canary(1, 0), None)),
        Verdict::Continue
    );
    assert_eq!(
        b.observe(&batch(1.0, 2.0, canary(1, 1), None)),
        Verdict::Continue
    );
    match b.observe(&batch(2.0, 3.0, canary(1, 1), None)) {
        Verdict::Trip(t) => assert_eq!(t.test, TestKind::ErrorRate),
        v => panic!("expected a trip, got {v:?}"),
    }
}

#[test]
fn common_mode_burst_does_not_trip_a_good_canary() {
    // Both arms at 20 % for 60 s, 20 canary req/s: the one-sample test rejects,
    // the comparison with the baseline does not, so the IUT holds.
    let mut b = Breaker::new(Settings::default()).unwrap();
    for s in 0..60 {
        let t = s as f64;
        let v = b.observe(&batch(t, t + 1.0, canary(20, 4), Some(canary(180, 36))));
        assert_eq!(v, Verdict::Continue, "second {s}");
    }
    let ev = b.evidence();
    assert!(
        ev.tests[0].statistic >= ev.tests[0].threshold,
        "one-sample must reject here"
    );
    assert!(ev.tests[1].statistic < ev.tests[1].threshold);
    // Without a baseline the same data trips: drift robustness needs a baseline.
    let mut lone = Breaker::new(Settings::default()).unwrap();
    let tripped = (0..60).any(|s| {
        let t = s as f64;
        matches!(
            lone.observe(&batch(t, t + 1.0, canary(20, 4), None)),
            Verdict::Trip(_)
        )
    });
    assert!(tripped);
}

#[test]
fn canary_worse_than_a_drifting_baseline_still_trips() {
    // Baseline at 0.5 %, canary at 10 %: both tests reject.
    let mut b = Breaker::new(Settings::default()).unwrap();
    let tripped = (0..120).any(|s| {
        let t = s as f64;
        matches!(
            b.observe(&batch(t, t + 1.0, canary(10, 1), Some(canary(90, 0)))),
            Verdict::Trip(_)
        )
    });
    assert!(tripped);
}

#[test]
fn empty_batches_never_trip_and_silence_is_inconclusive() {
    let mut b = Breaker::new(Settings::default()).unwrap();
    b.begin_step(0.0);
    for s in 0..10_000 {
        let t = s as f64;
        let base = if s % 2 == 0 {
            Some(Arm::default())
        } else {
            None
        };
        assert_eq!(
            b.observe(&batch(t, t + 1.0, Arm::default(), base)),
            Verdict::Continue
        );
    }
    assert_eq!(b.evidence().tests[0].statistic, 0.0);
    assert!(matches!(b.judge(119.0, 1800.0), Judgement::Continue));
    match b.judge(120.0, 1800.0) {
        Judgement::Inconclusive(r) => assert!(r.contains("no canary requests"), "{r}"),
        j => panic!("{j:?}"),
    }
    // Traffic resumes: no longer silent.
    b.observe(&batch(200.0, 201.0, canary(10, 0), Some(canary(90, 0))));
    assert_eq!(b.judge(250.0, 1800.0), Judgement::Continue);
}

#[test]
fn pass_only_after_window_and_minimum_exposure() {
    let s = Settings {
        min_requests: 1000,
        ..Settings::default()
    };
    let mut b = Breaker::new(s).unwrap();
    b.begin_step(0.0);
    for i in 0..60 {
        let t = i as f64;
        b.observe(&batch(t, t + 1.0, canary(10, 0), Some(canary(90, 0))));
    }
    // 600 requests, window 60 s elapsed → too few.
    match b.judge(60.0, 60.0) {
        Judgement::Inconclusive(r) => assert!(r.contains("600"), "{r}"),
        j => panic!("{j:?}"),
    }
    // Window not yet elapsed → continue.
    assert_eq!(b.judge(59.0, 60.0), Judgement::Continue);
    for i in 60..100 {
        let t = i as f64;
        b.observe(&batch(t, t + 1.0, canary(10, 0), Some(canary(90, 0))));
    }
    assert_eq!(b.judge(100.0, 60.0), Judgement::Pass);
    // A new step resets the exposure and the window.
    b.begin_step(100.0);
    assert_eq!(b.judge(101.0, 60.0), Judgement::Continue);
    b.observe(&batch(100.0, 101.0, canary(10, 0), Some(canary(90, 0))));
    assert!(matches!(b.judge(160.0, 60.0), Judgement::Inconclusive(_)));
}

#[test]
fn warmup_data_is_ignored() {
    let s = Settings {
        warmup: 30.0,
        ..Settings::default()
    };
    let mut b = Breaker::new(s).unwrap();
    for i in 0..30 {
        let t = i as f64;
        assert_eq!(
            b.observe(&batch(t, t + 1.0, canary(5, 5), Some(canary(45, 0)))),
            Verdict::Continue
        );
    }
    assert_eq!(b.evidence().canary.requests, 0);
    assert!(matches!(
        b.observe(&batch(30.0, 31.0, canary(5, 5), Some(canary(45, 0)))),
        Verdict::Trip(_)
    ));
}

#[test]
fn late_onset_guard_catches_a_regression_after_a_long_clean_stretch() {
    // 100 canary req/s, clean for 10 minutes, then 5 %.
    let mut b = Breaker::new(Settings::default()).unwrap();
    for i in 0..600 {
        let t = i as f64;
        let f = u64::from(i % 10 == 0); // 0.1 %
        assert_eq!(
            b.observe(&batch(t, t + 1.0, canary(100, f), Some(canary(900, 1)))),
            Verdict::Continue
        );
    }
    let mut at = None;
    for i in 600..700 {
        let t = i as f64;
        if let Verdict::Trip(tr) =
            b.observe(&batch(t, t + 1.0, canary(100, 5), Some(canary(900, 1))))
        {
            at = Some((i - 600 + 1, tr));
            break;
        }
    }
    let (secs, tr) = at.expect("late onset must trip");
    assert!(secs <= 5, "took {secs} s ({tr:?})");
}

#[test]
fn latency_test_trips_on_slow_canary_only_when_worse_than_baseline() {
    let s = Settings {
        latency_threshold: Some(0.5),
        ..Settings::default()
    };
    let d = Design::new(&s);
    assert!(close(
        d.alpha_error + d.alpha_latency + d.alpha_late,
        s.alpha,
        1e-15
    ));
    let slow = |n, k, s| Arm {
        requests: n,
        failures: k,
        slow: Some(s),
    };
    // Both arms equally slow (10 %): no trip.
    let mut b = Breaker::new(s.clone()).unwrap();
    for i in 0..300 {
        let t = i as f64;
        assert_eq!(
            b.observe(&batch(t, t + 1.0, slow(10, 0, 1), Some(slow(90, 0, 9)))),
            Verdict::Continue
        );
    }
    // Canary 30 % slow, baseline 1 %: trips on latency.
    let mut b = Breaker::new(s).unwrap();
    let trip = (0..300).find_map(|i| {
        let t = i as f64;
        match b.observe(&batch(t, t + 1.0, slow(10, 0, 3), Some(slow(90, 0, 1)))) {
            Verdict::Trip(tr) => Some(tr),
            Verdict::Continue => None,
        }
    });
    assert_eq!(trip.map(|t| t.test), Some(TestKind::Latency));
}

#[test]
fn settings_are_validated_with_one_error_per_setting() {
    let bad = |f: &dyn Fn(&mut Settings)| {
        let mut s = Settings::default();
        f(&mut s);
        Breaker::new(s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(bad(&|s| s.alpha = 0.0).contains("alpha"));
    assert!(bad(&|s| s.alpha = f64::NAN).contains("alpha"));
    assert!(bad(&|s| s.baseline_error_rate = 1.0).contains("baseline error rate"));
    assert!(bad(&|s| s.max_error_rate = 0.0005).contains("max error rate"));
    assert!(bad(&|s| s.rate_ratio = 1.0).contains("rate ratio"));
    assert!(bad(&|s| s.latency_threshold = Some(-1.0)).contains("latency threshold"));
    assert!(bad(&|s| s.warmup = -1.0).contains("warm-up"));
    assert!(bad(&|s| s.max_silence = 0.0).contains("max silence"));
    assert!(Breaker::new(Settings::default()).is_ok());
}

#[test]
fn simulator_is_bit_identical_for_identical_seeds() {
    let sc = Scenario::constant(10.0, 0.05, 0.001);
    let s = Settings::default();
    for run in 0..20 {
        let seed = sim::run_seed(1, "5%@10", run);
        assert_eq!(sim::run(&sc, &s, seed), sim::run(&sc, &s, seed));
    }
    assert_ne!(sim::run_seed(1, "a", 0), sim::run_seed(1, "b", 0));
    assert_ne!(sim::run_seed(1, "a", 0), sim::run_seed(1, "a", 1));
}

#[test]
fn poisson_sampler_has_the_right_mean() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for &m in &[0.3, 4.0, 25.0, 900.0] {
        let n = 20_000;
        let s: u64 = (0..n).map(|_| sim::poisson(&mut rng, m)).sum();
        let mean = s as f64 / n as f64;
        assert!(
            (mean - m).abs() < 4.0 * (m / n as f64).sqrt() + 1e-9,
            "mean {mean} vs {m}"
        );
    }
}

/// A baseline whose series vanishes mid-watch (an empty or stale query)
/// must never let a failing canary pass: 100 seeded trials, each with a bad
/// canary (50–99 % failing from the dropout on), a dropout at a random time,
/// random traffic, and the window and `min-requests` met. None passes; once
/// the gap reaches `max_silence` the step is inconclusive and says why.
#[test]
fn a_baseline_that_vanishes_never_lets_a_failing_canary_pass() {
    let mut seed: u64 = 0xba5e_d20b;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let settings = Settings {
        min_requests: 200,
        ..Settings::default()
    };
    let window = 600.0;
    let mut inconclusive = 0;
    for trial in 0..100 {
        let mut b = Breaker::new(settings.clone()).unwrap();
        b.begin_step(0.0);
        let dropout = 5 + next(60) as usize;
        let rate = 2 + next(20); // canary requests per second
        let fail_pct = 50 + next(50);
        let mut verdict = None;
        for s in 0..900usize {
            let t = s as f64;
            let failures = if s >= dropout {
                rate * fail_pct / 100
            } else {
                0
            };
            let base = (s < dropout).then(|| canary(rate * 9, 0));
            if let Verdict::Trip(_) = b.observe(&batch(t, t + 1.0, canary(rate, failures), base)) {
                verdict = Some("trip");
                break;
            }
            match b.judge(t + 1.0, window) {
                Judgement::Pass => panic!(
                    "trial {trial}: a canary failing {fail_pct} % passed after the baseline vanished at {dropout} s"
                ),
                Judgement::Inconclusive(why) => {
                    assert!(why.contains("baseline's series was missing"), "{why}");
                    let waited = t + 1.0 - dropout as f64;
                    assert!((waited - settings.max_silence).abs() <= 1.0, "{t}: {why}");
                    verdict = Some("inconclusive");
                    inconclusive += 1;
                    break;
                }
                Judgement::Continue => {}
            }
        }
        assert!(verdict.is_some(), "trial {trial}: no verdict in 900 s");
    }
    // Without the baseline the two-sample test cannot trip: each trial
    // ends inconclusive.
    assert_eq!(inconclusive, 100);
}

/// A baseline series that is still there but counts nothing (a stale
/// series, or an empty one, as Azure Monitor's minute buckets show a
/// dropped series: a zero increment, not a missing value) is the same hole:
/// 100 seeded trials, a bad canary from the dropout on, the dropout at a
/// random time — or from the very start, the baseline never counting — and
/// none passes; each ends inconclusive once the canary has counted alone
/// for `max_silence`, and says why.
#[test]
fn a_baseline_that_counts_nothing_never_lets_a_failing_canary_pass() {
    let mut seed: u64 = 0x57a1_e5e7;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let settings = Settings {
        min_requests: 200,
        ..Settings::default()
    };
    let window = 600.0;
    for trial in 0..100 {
        let mut b = Breaker::new(settings.clone()).unwrap();
        b.begin_step(0.0);
        // A quarter of the trials: the baseline never counts at all.
        let dropout = if trial % 4 == 0 {
            0
        } else {
            5 + next(60) as usize
        };
        let rate = 2 + next(20);
        let fail_pct = 50 + next(50);
        let mut inconclusive = false;
        for s in 0..900usize {
            let t = s as f64;
            let failures = if s >= dropout {
                rate * fail_pct / 100
            } else {
                0
            };
            let base_requests = if s < dropout { rate * 9 } else { 0 };
            let batch = batch(
                t,
                t + 1.0,
                canary(rate, failures),
                Some(canary(base_requests, 0)),
            );
            if let Verdict::Trip(trip) = b.observe(&batch) {
                panic!("trial {trial}: tripped without a baseline to compare: {trip:?}");
            }
            match b.judge(t + 1.0, window) {
                Judgement::Pass => panic!(
                    "trial {trial}: a canary failing {fail_pct} % passed while the baseline counted nothing from {dropout} s"
                ),
                Judgement::Inconclusive(why) => {
                    assert!(why.contains("baseline's series was missing"), "{why}");
                    let waited = t + 1.0 - dropout as f64;
                    assert!((waited - settings.max_silence).abs() <= 1.0, "{t}: {why}");
                    inconclusive = true;
                    break;
                }
                Judgement::Continue => {}
            }
        }
        assert!(inconclusive, "trial {trial}: no verdict in 900 s");
    }
}

/// …but a quiet spell on both arms is not a missing baseline (the canary
/// coming back first, alone in its batch, does not make the spell count),
/// and a sparse baseline that counts a request every few seconds while
/// the canary counts more does not block a good canary.
#[test]
fn quiet_or_sparse_baselines_are_not_missing() {
    let settings = Settings {
        min_requests: 100,
        ..Settings::default()
    };
    // Both arms silent from 60 s to 400 s; at 400 s the canary's requests
    // come a batch before the baseline's.
    let mut b = Breaker::new(settings.clone()).unwrap();
    b.begin_step(0.0);
    let mut passed_at = None;
    for s in 0..1200usize {
        let t = s as f64;
        let (n_c, n_b) = match s {
            0..60 => (2, 18),
            60..400 => (0, 0),
            400 => (2, 0),
            _ => (2, 18),
        };
        b.observe(&batch(t, t + 1.0, canary(n_c, 0), Some(canary(n_b, 0))));
        match b.judge(t + 1.0, 1000.0) {
            Judgement::Pass => {
                passed_at = Some(t + 1.0);
                break;
            }
            // The spell is longer than max-silence for the canary too.
            Judgement::Inconclusive(why) if (179..400).contains(&s) => {
                assert!(why.contains("no canary requests"), "{t}: {why}");
            }
            Judgement::Inconclusive(why) => panic!("{t}: {why}"),
            Judgement::Continue => {}
        }
    }
    assert_eq!(passed_at, Some(1000.0));

    // The canary counts every second; the baseline every 5 s only.
    let mut b = Breaker::new(settings).unwrap();
    b.begin_step(0.0);
    let mut passed = false;
    for s in 0..700usize {
        let t = s as f64;
        let n_b = if s % 5 == 4 { 3 } else { 0 };
        b.observe(&batch(t, t + 1.0, canary(1, 0), Some(canary(n_b, 0))));
        match b.judge(t + 1.0, 600.0) {
            Judgement::Pass => {
                passed = true;
                break;
            }
            Judgement::Inconclusive(why) => panic!("{t}: {why}"),
            Judgement::Continue => {}
        }
    }
    assert!(passed);
}

/// Short scrape gaps (under `max_silence`) do not stop a good canary from
/// passing.
#[test]
fn short_baseline_gaps_do_not_block_a_good_canary() {
    let settings = Settings {
        min_requests: 200,
        ..Settings::default()
    };
    let mut b = Breaker::new(settings).unwrap();
    b.begin_step(0.0);
    let mut passed = false;
    for s in 0..700usize {
        let t = s as f64;
        // Every 30 s the baseline is missing for 20 s.
        let base = (s % 30 >= 20).then(|| canary(90, 0));
        assert_eq!(
            b.observe(&batch(t, t + 1.0, canary(10, 0), base)),
            Verdict::Continue
        );
        match b.judge(t + 1.0, 600.0) {
            Judgement::Pass => {
                passed = true;
                break;
            }
            Judgement::Inconclusive(why) => panic!("{t}: {why}"),
            Judgement::Continue => {}
        }
    }
    assert!(passed);
}

/// A good canary whose failures clump exactly as production's do (same
/// mean rate on both arms, clumps of 2 and 3, 2 to 100 requests a
/// second) is rolled back at most as often as α allows: 100 seeded
/// 30-minute watches per cell, and the Wilson upper bound of the false-trip
/// rate stays under 2·α (the binomial count alone cannot resolve 1 % in
/// 100 trials; BENCHMARKS.md has 10,000-run cells).
#[test]
fn clumped_failures_on_both_arms_rarely_roll_back_a_good_canary() {
    let settings = Settings::default();
    let mut report = Vec::new();
    let mut worst = 0;
    for clump in [2u64, 3] {
        for rps in [2.0, 20.0, 100.0] {
            let trips = (0..100u64)
                .filter(|&seed| {
                    let cell = sim::Clumped {
                        canary_rps: rps,
                        canary_error: settings.baseline_error_rate,
                        baseline_error: settings.baseline_error_rate,
                        clump,
                        seconds: 1800,
                        history: 0,
                    };
                    sim::clumped(&settings, &cell, seed * 7919 + clump * 31 + rps as u64).is_some()
                })
                .count();
            report.push(format!(
                "clumps of {clump} at {rps} req/s: {trips}/100 tripped"
            ));
            worst = worst.max(trips);
        }
    }
    // 3 of 100 has a Wilson 95 % lower bound of 1 %: more is a false-trip
    // rate above the budget.
    assert!(worst <= 2, "{report:#?}");
}

/// …and a bad canary whose failures clump is still rolled back: ten times
/// production's rate, clumps of 3, every one of 100 seeded watches trips,
/// and quickly at 20 req/s.
#[test]
fn a_bad_canary_whose_failures_clump_is_still_rolled_back() {
    let settings = Settings::default();
    let mut times: Vec<f64> = Vec::new();
    for seed in 0..100u64 {
        let cell = sim::Clumped {
            canary_rps: 20.0,
            canary_error: 0.05,
            baseline_error: 0.001,
            clump: 3,
            seconds: 1800,
            history: 0,
        };
        let t = sim::clumped(&settings, &cell, 1_000 + seed);
        times.push(t.unwrap_or_else(|| panic!("seed {seed}: a canary failing 5 % never tripped")));
    }
    times.sort_by(f64::total_cmp);
    assert!(times[50] <= 60.0, "median {} s: {times:?}", times[50]);
}

/// At a high step with little traffic the baseline is quiet for minutes
/// and is not missing: 100 seeded 10-minute watches of a good canary at a
/// 90 % step, 6 requests a minute in all (the baseline gets one every
/// 100 s on average), `min_requests` 20. None ends inconclusive for a
/// "missing" baseline (before the canary's share was known, about 30 % of
/// 120-s stretches would have). A dead baseline at that step is still a
/// hole once the canary's requests make a baseline request all but certain.
#[test]
fn a_quiet_baseline_at_a_high_step_is_not_missing() {
    let settings = Settings {
        min_requests: 20,
        ..Settings::default()
    };
    let mut seed: u64 = 0x90_57e9;
    let mut uniform = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut missing = 0;
    for _ in 0..100 {
        let mut b = Breaker::new(settings.clone()).unwrap();
        // Seen at the first step (10 %), then the 90 % step.
        b.observe(&batch(0.0, 1.0, canary(1, 0), Some(canary(9, 0))));
        b.set_canary_share(0.9);
        b.begin_step(1.0);
        for s in 1..601usize {
            let t = s as f64;
            // 0.1 req/s in all: 0.09 canary, 0.01 baseline, Bernoulli per second.
            let n_c = u64::from(uniform() < 0.09);
            let n_b = u64::from(uniform() < 0.01);
            b.observe(&batch(t, t + 1.0, canary(n_c, 0), Some(canary(n_b, 0))));
            match b.judge(t + 1.0, 600.0) {
                Judgement::Inconclusive(why) if why.contains("baseline's series was missing") => {
                    missing += 1;
                    break;
                }
                Judgement::Continue => {}
                _ => break,
            }
        }
    }
    assert!(
        missing <= 2,
        "{missing} of 100 quiet baselines called missing"
    );

    // The same step with the baseline dead: still a hole.
    let mut b = Breaker::new(settings).unwrap();
    b.observe(&batch(0.0, 1.0, canary(1, 0), Some(canary(9, 0))));
    b.set_canary_share(0.9);
    b.begin_step(1.0);
    let verdict = (1..2000usize).find_map(|s| {
        let t = s as f64;
        b.observe(&batch(t, t + 1.0, canary(1, 0), Some(canary(0, 0))));
        match b.judge(t + 1.0, 3000.0) {
            Judgement::Continue => None,
            other => Some(other),
        }
    });
    assert!(
        matches!(&verdict, Some(Judgement::Inconclusive(why)) if why.contains("baseline's series was missing")),
        "{verdict:?}"
    );
}

/// The canary's failures counted as clumps never overstate the evidence
/// against a canary whose clumps land like production's: exact
/// expectation of the failure split's e-value over every way up to six
/// clumps (sizes 1 to φ) can land, in one batch and straddling two, at
/// several exposure shares. Each clump lands on the canary with its
/// exposure share; the canary's failures are counted by `ClumpCount`, the
/// baseline's one by one.
#[test]
fn failures_counted_as_clumps_keep_the_split_an_e_value() {
    let split = FailureSplit { rho1: 10.0 };
    let mut worst: f64 = 0.0;
    // Enough requests in each batch for every failure (the exposure share
    // is what matters).
    for &(n_c, n_b) in &[(20u64, 180u64), (20, 60), (30, 30), (25, 400)] {
        let pi0 = n_c as f64 / (n_c + n_b) as f64;
        for phi in [1u64, 2, 3] {
            let temper = 1.0 / phi as f64;
            // Clumps as (failures in the first batch, in the second).
            let shapes: Vec<Vec<(u64, u64)>> = vec![
                vec![(1, 0); 6],
                vec![(phi, 0), (1, 0), (phi, 0)],
                vec![
                    (phi.saturating_sub(1), 1),
                    (1, phi.saturating_sub(1)),
                    (0, phi),
                ],
                vec![(phi, 0), (0, phi), (1, 0), (0, 1), (phi, 0)],
                vec![(phi / 2, phi - phi / 2); 4],
            ];
            for clumps in shapes {
                let m = clumps.len();
                let mut expectation = 0.0;
                for assign in 0..(1u32 << m) {
                    let mut prob = 1.0;
                    let mut x = [[0u64; 2]; 2]; // [batch][canary, baseline]
                    for (j, &(a, b)) in clumps.iter().enumerate() {
                        let on_canary = assign >> j & 1 == 1;
                        prob *= if on_canary { pi0 } else { 1.0 - pi0 };
                        let arm = usize::from(!on_canary);
                        x[0][arm] += a;
                        x[1][arm] += b;
                    }
                    let mut count = ClumpCount::default();
                    let mut log_e = 0.0;
                    for batch in x {
                        let p = Pair {
                            n_c,
                            x_c: batch[0],
                            n_b,
                            x_b: batch[1],
                        };
                        let counted = Counted {
                            x_c: count.add(p.x_c, temper),
                            ..Counted::plain(p)
                        };
                        log_e += split.increment_counted(p, counted);
                    }
                    expectation += prob * log_e.exp();
                }
                worst = worst.max(expectation);
                assert!(
                    expectation <= 1.0 + 1e-9,
                    "E[e] = {expectation} for clumps {clumps:?}, φ = {phi}, n_c = {n_c}, n_b = {n_b}"
                );
            }
        }
    }
    // The check can fail: counted one by one, a clump of 3 overstates it
    // (E[e] ≈ 14.7 at a 10 % share).
    let on = |x_c, x_b| {
        split
            .increment(Pair {
                n_c: 20,
                x_c,
                n_b: 180,
                x_b,
            })
            .exp()
    };
    let overstated = 0.1 * on(3, 0) + 0.9 * on(0, 3);
    assert!(overstated > 1.5, "{overstated}");
    assert!(worst > 0.5, "{worst}");
}

/// A run of canary failures counts as at least how many clumps it must
/// be: a lone failure is one clump whatever the index; three failures at
/// index 3 are one, in one batch or straddling two; a long run counts
/// each failure `1/φ`; a batch without failures ends the run.
#[test]
fn a_run_of_canary_failures_counts_as_its_fewest_clumps() {
    let mut c = ClumpCount::default();
    assert_eq!(c.add(1, 0.5), 1.0);
    assert_eq!(c.add(0, 0.5), 0.0);
    assert_eq!(
        c.add(1, 0.5),
        1.0,
        "a new run: its first failure counts one"
    );
    let mut c = ClumpCount::default();
    assert_eq!(c.add(3, 1.0 / 3.0), 1.0);
    let mut c = ClumpCount::default();
    let straddling = c.add(1, 1.0 / 3.0) + c.add(2, 1.0 / 3.0);
    assert!(close(straddling, 1.0, 1e-12), "{straddling}");
    let mut c = ClumpCount::default();
    let long: f64 = (0..100).map(|_| c.add(2, 0.5)).sum();
    assert!(close(long, 100.0, 1e-9), "{long}");
    let mut c = ClumpCount::default();
    let independent: f64 = (0..10).map(|_| c.add(2, 1.0)).sum();
    assert_eq!(independent, 20.0, "index 1 is the plain count");
}

fn median_trip(scenario: &Scenario, runs: u64, salt: u64) -> f64 {
    median_trip_with(&Settings::default(), scenario, runs, salt)
}

/// Counting clumps costs a bad canary whose failures are independent
/// little: a 5 % canary at 2 req/s (10 % share, 1-s batches) trips in a
/// median of at most 40 s over 200 seeded watches (35 s counting every
/// failure; 66 s when every failure was tempered by the clumping prior).
#[test]
fn counting_clumps_keeps_a_five_percent_canary_fast() {
    let median = median_trip(&Scenario::constant(2.0, 0.05, 0.001), 200, 5);
    assert!(median <= 40.0, "median {median} s");
}

/// A spill — a shared dependency drags production to 50 % while the
/// canary fails outright — trips in a median of at most 15 s at 2 req/s
/// (1-s batches, 200 seeded watches; 26 s before the plug-in 2×2
/// component and the light baseline-rate prior).
#[test]
fn a_spill_onto_production_still_trips_a_failing_canary_within_15_s() {
    let median = median_trip(&Scenario::constant(2.0, 1.0, 0.5), 200, 7);
    assert!(median <= 15.0, "median {median} s");
}

fn median_trip_with(settings: &Settings, scenario: &Scenario, runs: u64, salt: u64) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|r| {
            sim::run(scenario, settings, salt * 1_000_003 + r)
                .per_second
                .trip
                .unwrap_or(f64::INFINITY)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// With 30 minutes of production's history (what the driver reads from
/// Prometheus), counting clumps costs a bad canary whose failures are
/// independent at most 10 % against counting every failure, where the
/// clump index would otherwise start from its prior: 5 % canaries at 10
/// and 20 req/s, 1 % at 100 req/s (1-s batches, 200 seeded watches each).
#[test]
fn production_history_makes_counting_clumps_as_fast_as_counting_each_failure() {
    let clumps = Settings::default();
    let each = Settings {
        independent_failures: true,
        ..Settings::default()
    };
    let mut report = Vec::new();
    let mut worst: f64 = 0.0;
    for (rps, error) in [(10.0, 0.05), (20.0, 0.05), (100.0, 0.01)] {
        let watch = Scenario::constant(rps, error, 0.001);
        let history = Scenario {
            history: 1800,
            ..watch.clone()
        };
        let (without, with, plain) = (
            median_trip_with(&clumps, &watch, 200, 11),
            median_trip_with(&clumps, &history, 200, 11),
            median_trip_with(&each, &watch, 200, 11),
        );
        report.push(format!(
            "{error}@{rps}: {without} s without history, {with} s with, {plain} s counting each failure"
        ));
        worst = worst.max(with / plain);
    }
    eprintln!("{report:#?}");
    assert!(worst <= 1.1, "{report:#?}");
}

/// Production's history also tells the breaker how big production's clumps
/// are before the canary's first: clumps of 5 (beyond the index's prior)
/// on both arms of a good canary at 40 req/s roll it back in at most 2 of
/// 200 seeded watches (without history: about 3 %).
#[test]
fn production_history_keeps_large_clumps_from_rolling_back_a_good_canary() {
    let settings = Settings::default();
    let trips = |history: u32| {
        (0..200u64)
            .filter(|&seed| {
                let cell = sim::Clumped {
                    canary_rps: 40.0,
                    canary_error: 0.001,
                    baseline_error: 0.001,
                    clump: 5,
                    seconds: 1800,
                    history,
                };
                sim::clumped(&settings, &cell, 77 + seed).is_some()
            })
            .count()
    };
    let (with, without) = (trips(1800), trips(0));
    eprintln!("{with}/200 tripped with history, {without}/200 without");
    assert!(
        with <= 2,
        "{with}/200 tripped with history, {without}/200 without"
    );
}
