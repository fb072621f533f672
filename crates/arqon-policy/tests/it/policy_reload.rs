//! Hot reload: an atomic swap under concurrent evaluations; a refused deploy keeps the old chain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use arqon_policy::{PolicySet, Scope, Verdict};

use crate::support::{describe, fixture, host, input, source};

/// Which chain an evaluation observably ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Old,
    New,
    Either,
}

/// Old chain: [bad-words-v1]. New chain: [payload-size-v2, bad-words-v2].
fn observe(payload: &[u8], verdict: Verdict) -> Seen {
    let forbidden = payload.windows(7).any(|w| w == b"malware");
    match (forbidden, payload.len() > 4096, verdict) {
        (true, _, Verdict::Allow) => panic!("a forbidden message was allowed"),
        (true, _, blocked) => match describe(blocked).0.as_str() {
            "bad-words-v1" => Seen::Old,
            "bad-words-v2" => Seen::New,
            other => panic!("blocked by {other}"),
        },
        (false, false, Verdict::Allow) => Seen::Either,
        (false, true, Verdict::Allow) => Seen::Old,
        (false, true, blocked) => {
            assert_eq!(describe(blocked).0, "payload-size-v2");
            Seen::New
        }
        (false, false, blocked) => panic!("a clean message was blocked: {blocked:?}"),
    }
}

// AC-POLICY-9
#[test]
fn ac_policy_9_hot_reload_under_concurrent_evaluations_sees_whole_chains_only() {
    const THREADS: usize = 4;
    const BEFORE: usize = 60;
    const AFTER: usize = 60;
    let host = host();
    let policies = Arc::new(PolicySet::new());
    let tenant = Scope::Tenant("acme".into());
    let (words, size) = (fixture("bad_words"), fixture("payload_size"));
    policies
        .deploy(&host, tenant.clone(), &[source("bad-words-v1", &words)])
        .unwrap();
    let swapped = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(THREADS + 1));
    let large = vec![b'a'; 5000];
    let messages: Arc<[Vec<u8>]> =
        Arc::from(vec![b"hello".to_vec(), b"this is malware".to_vec(), large]);

    let workers: Vec<_> = (0..THREADS)
        .map(|worker| {
            let (policies, swapped, started, messages) = (
                Arc::clone(&policies),
                Arc::clone(&swapped),
                Arc::clone(&started),
                Arc::clone(&messages),
            );
            thread::spawn(move || {
                let mut seen = Vec::new();
                let (mut sent, mut after_swap) = (0_usize, 0_usize);
                while after_swap < AFTER {
                    if sent == BEFORE {
                        started.wait();
                    }
                    let began_after_swap = swapped.load(Ordering::Acquire);
                    let payload = &messages[(sent + worker) % messages.len()];
                    let observed = observe(payload, policies.evaluate(&input(payload)));
                    if began_after_swap {
                        assert_ne!(
                            observed,
                            Seen::Old,
                            "an evaluation begun after the swap saw the old chain"
                        );
                        after_swap += 1;
                    }
                    seen.push(observed);
                    sent += 1;
                }
                (sent, seen)
            })
        })
        .collect();

    started.wait();
    policies
        .deploy(
            &host,
            tenant,
            &[
                source("payload-size-v2", &size),
                source("bad-words-v2", &words),
            ],
        )
        .unwrap();
    swapped.store(true, Ordering::Release);

    let mut total_sent = 0;
    let mut total_seen = 0;
    let (mut olds, mut news) = (0, 0);
    for worker in workers {
        let (sent, seen) = worker.join().unwrap();
        total_sent += sent;
        total_seen += seen.len();
        let definite: Vec<Seen> = seen.into_iter().filter(|s| *s != Seen::Either).collect();
        let first_new = definite
            .iter()
            .position(|s| *s == Seen::New)
            .unwrap_or(definite.len());
        assert!(
            definite[first_new..].iter().all(|s| *s == Seen::New),
            "a thread saw the old chain again after the new one"
        );
        olds += first_new;
        news += definite.len() - first_new;
    }
    assert_eq!(total_seen, total_sent, "an evaluation was lost");
    assert!(olds > 0 && news > 0, "old {olds}, new {news}");
    assert_eq!(
        policies.metrics().evaluations(),
        u64::try_from(total_sent).unwrap()
    );
}

// AC-POLICY-9
#[test]
fn ac_policy_9_an_evaluation_in_flight_finishes_on_the_chain_it_started_with() {
    let host = host();
    let set = PolicySet::new();
    let tenant = Scope::Tenant("acme".into());
    let (words, allow) = (fixture("bad_words"), fixture("allow_all"));
    set.deploy(&host, tenant.clone(), &[source("words", &words)])
        .unwrap();
    let (_, in_flight) = set.snapshot("acme");
    set.deploy(&host, tenant, &[source("allow", &allow)])
        .unwrap();
    let in_flight = in_flight.unwrap();
    assert_eq!(describe(in_flight.evaluate(&input(b"malware"))).0, "words");
    assert_eq!(set.evaluate(&input(b"malware")), Verdict::Allow);
}

// AC-POLICY-10
#[test]
fn ac_policy_10_a_refused_deploy_keeps_the_old_chain_in_force() {
    let host = host();
    let set = PolicySet::new();
    let tenant = Scope::Tenant("acme".into());
    let words = fixture("bad_words");
    set.deploy(&host, tenant.clone(), &[source("words", &words)])
        .unwrap();
    let before = set.list();

    for bad in [
        "imports_host",
        "not_wasm",
        "missing_evaluate",
        "selftest_fails",
    ] {
        let bytes = fixture(bad);
        let allow = fixture("allow_all");
        let refused = set
            .deploy(
                &host,
                tenant.clone(),
                &[source("allow", &allow), source(bad, &bytes)],
            )
            .map(|_| ())
            .expect_err(bad);
        assert_eq!((refused.index, refused.name.as_str()), (1, bad));
        assert_eq!(set.list(), before, "{bad}");
        assert_eq!(describe(set.evaluate(&input(b"malware"))).0, "words");
    }
}
