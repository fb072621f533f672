//! Property tests of the governance control plane (fixed seeds, checked-in regressions).

//! Random event sequences (fixed seed) against the control plane's invariants.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const T0: u64 = 1_700_000_000_000_000;
const IDS: [&str; 4] = ["p0", "p1", "p2", "p3"];

fn role() -> impl Strategy<Value = GovRole> {
    prop::sample::select(GovRole::ALL.to_vec())
}

fn message() -> impl Strategy<Value = GovernanceCommand> {
    let id = prop::sample::select(IDS.to_vec()).prop_map(str::to_owned);
    let rollout = prop::option::of((0u32..=20, 0u32..=30, 20u32..=100).prop_map(|(i, s, m)| {
        v1::RolloutConfig {
            initial_percent: f64::from(i),
            increment_per_minute: f64::from(s),
            max_percent: f64::from(m),
        }
    }));
    let action = prop_oneof![
        Just(Action::SetVariant(v1::SetVariant { variant_id: 1 })),
        Just(Action::SetParams(v1::SetParams::default())),
        Just(Action::EmergencyStop(v1::EmergencyStop {})),
        Just(Action::PauseAdaptation(v1::PauseAdaptation {})),
        Just(Action::ResumeAdaptation(v1::ResumeAdaptation {})),
    ];
    prop_oneof![
        (
            id.clone(),
            prop::sample::select(vec![0.5, 0.85, 0.95]),
            0u64..3
        )
            .prop_map(|(id, confidence, variant)| GovernanceCommand::Proposal(
                v1::Proposal {
                    id,
                    timestamp_us: T0,
                    variant_id: Some(variant),
                    params: BTreeMap::new(),
                    reason: "r".into(),
                    confidence,
                }
            )),
        (id.clone(), rollout).prop_map(|(proposal_id, rollout)| {
            GovernanceCommand::Approval(v1::Approval {
                proposal_id,
                proposal_digest: String::new(),
                rollout,
            })
        }),
        id.prop_map(|proposal_id| GovernanceCommand::Rejection(v1::Rejection {
            proposal_id,
            reason: "no".into(),
        })),
        action.prop_map(|a| GovernanceCommand::Enforce(v1::Enforce {
            action: Some(a),
            reason: String::new(),
        })),
        (0u64..6).prop_map(
            |version| GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
                version,
                source_uri: String::new(),
            })
        ),
        Just(GovernanceCommand::Telemetry(v1::Telemetry::default())),
    ]
}

/// `None` is a Tick `minutes` later; `Some` a message from a role.
fn event() -> impl Strategy<Value = (u64, Option<(GovRole, GovernanceCommand)>)> {
    (0u64..3, prop::option::weighted(0.85, (role(), message())))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x60_7E2A),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    // AC-GOV-11
    #[test]
    fn control_plane_keeps_its_invariants(
        auto_approve in any::<bool>(),
        max in 1usize..3,
        events in prop::collection::vec(event(), 1..60),
    ) {
        let rules = Rules { auto_approve, max_concurrent_rollouts: max, ..Rules::default() };
        let mut cp = ControlPlane::new(TenantId::parse("acme").unwrap(), rules);
        let mut now = T0;
        let mut proposed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (minutes, message) in events {
            now += minutes * 60_000_000;
            let paused_before = cp.paused();
            let catalog_before = cp.catalog_version();
            let (event, sender) = match message {
                None => (GovEvent::Tick { at_us: now }, None),
                Some((role, message)) => {
                    if let GovernanceCommand::Proposal(p) = &message {
                        proposed.entry(p.id.clone()).or_default().push(proposal_digest(p));
                    }
                    let from = Principal { user: UserId::parse("u").unwrap(), role };
                    let kind = MessageKind::of(&message);
                    (GovEvent::Message { at_us: now, from, message }, Some((role, kind)))
                }
            };
            let effects = cp.handle(event);
            cp.check_invariants().unwrap();
            prop_assert!(cp.catalog_version() >= catalog_before);
            if sender.is_some() {
                prop_assert!(effects.iter().any(|e| matches!(e, GovEffect::Audit(_))));
            }
            if let Some((role, kind)) = sender
                && authorize(role, kind).is_err()
            {
                prop_assert!(!effects.iter().any(|e| matches!(e, GovEffect::Publish(_))));
            }
            for (i, effect) in effects.iter().enumerate() {
                let GovEffect::Publish(m) = effect else { continue };
                prop_assert!(i >= 2 && matches!(&effects[i - 2], GovEffect::Audit(a)
                    if a.outcome == "published" && a.kind == MessageKind::of(m).as_str()));
                if let GovernanceCommand::Approval(a) = m {
                    prop_assert!(!(paused_before && cp.paused()), "approval while paused");
                    prop_assert!(proposed.get(&a.proposal_id)
                        .is_some_and(|d| d.contains(&a.proposal_digest)));
                }
            }
        }
    }
}
