//! Unit tests of the governance control plane: authorization, digests, proposals, approvals,
//! enforcement and the audit entries each decision appends.

use sha2::{Digest as _, Sha256};

use super::checkpoint::{Checkpoint, CheckpointError, Resumed};
use super::*;

const T0: u64 = 1_700_000_000_000_000;

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn who(user: &str, role: GovRole) -> Principal {
    Principal {
        user: UserId::parse(user).unwrap(),
        role,
    }
}

fn agent() -> Principal {
    who("agent-1", GovRole::DataPlane)
}

fn operator() -> Principal {
    who("ops-1", GovRole::Operator)
}

fn proposal(id: &str, confidence: f64) -> v1::Proposal {
    v1::Proposal {
        id: id.into(),
        timestamp_us: T0,
        variant_id: Some(42),
        params: [("alpha".to_owned(), 0.5), ("beta".to_owned(), 2.0)]
            .into_iter()
            .collect(),
        reason: "Latency regression detected".into(),
        confidence,
    }
}

fn msg(
    cp: &mut ControlPlane,
    at_us: u64,
    from: &Principal,
    message: GovernanceCommand,
) -> Vec<GovEffect> {
    cp.handle(GovEvent::Message {
        at_us,
        from: from.clone(),
        message,
    })
}

fn propose(cp: &mut ControlPlane, id: &str, confidence: f64) -> Vec<GovEffect> {
    msg(
        cp,
        T0,
        &agent(),
        GovernanceCommand::Proposal(proposal(id, confidence)),
    )
}

fn act(cp: &mut ControlPlane, action: Action) -> Vec<GovEffect> {
    msg(cp, T0, &operator(), enforce(action))
}

fn enforce(action: Action) -> GovernanceCommand {
    GovernanceCommand::Enforce(v1::Enforce {
        action: Some(action),
        reason: "test".into(),
    })
}

fn published(effects: &[GovEffect]) -> Vec<&GovernanceCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            GovEffect::Publish(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn audits(effects: &[GovEffect]) -> Vec<(&str, &str)> {
    effects
        .iter()
        .filter_map(|e| match e {
            GovEffect::Audit(a) => Some((a.kind.as_str(), a.outcome.as_str())),
            _ => None,
        })
        .collect()
}

fn reply_code(effects: &[GovEffect]) -> Option<v1::ErrorCode> {
    effects.iter().find_map(|e| match e {
        GovEffect::Reply { code, .. } => Some(*code),
        _ => None,
    })
}

fn auto_rules(max: usize) -> Rules {
    Rules {
        min_confidence: 0.8,
        max_concurrent_rollouts: max,
        auto_approve: true,
        default_rollout: RolloutConfig {
            initial_bp: 500,
            increment_bp_per_minute: 1_000,
            max_bp: 5_000,
        },
    }
}

// AC-GOV-1
#[test]
fn authorization_matrix_is_exact() {
    use GovRole::{ControlPlane as C, DataPlane as D, Operator as O, Tier1 as T};
    let allowed: &[(MessageKind, &[GovRole])] = &[
        (MessageKind::Telemetry, &[D]),
        (MessageKind::Proposal, &[D]),
        (MessageKind::Alert, &[D, C]),
        (MessageKind::Approval, &[T, O, C]),
        (MessageKind::Rejection, &[T, O, C]),
        (MessageKind::Enforce, &[T, O, C]),
        (MessageKind::CatalogUpdate, &[T, O, C]),
    ];
    for (kind, roles) in allowed {
        for role in GovRole::ALL {
            let got = authorize(role, *kind);
            if roles.contains(&role) {
                assert_eq!(got, Ok(()), "{role} {kind}");
            } else {
                assert_eq!(got, Err(Forbidden { role, kind: *kind }), "{role} {kind}");
            }
        }
    }
    assert_eq!(allowed.len(), MessageKind::ALL.len());
    for claim in ["", "user", "service", "control-plane", "Tier1", "ADMIN"] {
        assert_eq!(
            GovRole::from_claim(claim),
            GovRole::Unprivileged,
            "{claim:?}"
        );
    }
    assert_eq!(GovRole::from_claim("agent"), GovRole::DataPlane);
    assert_eq!(GovRole::from_claim("tier1"), GovRole::Tier1);
    assert_eq!(GovRole::from_claim("admin"), GovRole::Operator);
    let receivers: Vec<GovRole> = GovRole::ALL
        .into_iter()
        .filter(|role| role.receives_downstream())
        .collect();
    assert_eq!(
        receivers,
        [GovRole::DataPlane, GovRole::Tier1, GovRole::Operator]
    );
    let administrators: Vec<GovRole> = GovRole::ALL
        .into_iter()
        .filter(|role| role.may_administer())
        .collect();
    assert_eq!(administrators, [GovRole::Operator]);
}

// AC-GOV-2
#[test]
fn data_plane_enforce_is_forbidden_counted_and_audited() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    let effects = msg(
        &mut cp,
        T0,
        &agent(),
        enforce(Action::EmergencyStop(v1::EmergencyStop {})),
    );
    assert!(published(&effects).is_empty());
    assert_eq!(reply_code(&effects), Some(v1::ErrorCode::Forbidden));
    assert_eq!(audits(&effects), [("enforce", "forbidden")]);
    assert!(effects.contains(&GovEffect::Count {
        metric: METRIC_FORBIDDEN,
        labels: [("kind", "enforce"), ("role", "dataplane")],
    }));
    assert!(!cp.paused());
    // An unprivileged principal may not even send telemetry.
    let nobody = who("u1", GovRole::Unprivileged);
    let effects = msg(
        &mut cp,
        T0,
        &nobody,
        GovernanceCommand::Telemetry(v1::Telemetry::default()),
    );
    assert_eq!(reply_code(&effects), Some(v1::ErrorCode::Forbidden));
}

// AC-GOV-3
#[test]
fn digest_is_canonical() {
    let p = proposal("prop_001", 0.92);
    // Hand-built canonical form, straight from the spec.
    let mut bytes = b"arqon.proposal.v1\0".to_vec();
    bytes.extend(8u32.to_be_bytes());
    bytes.extend(b"prop_001");
    bytes.extend(T0.to_be_bytes());
    bytes.push(1);
    bytes.extend(42u64.to_be_bytes());
    bytes.extend(2u32.to_be_bytes());
    for (k, v) in [("alpha", 0.5f64), ("beta", 2.0)] {
        bytes.extend(u32::try_from(k.len()).unwrap().to_be_bytes());
        bytes.extend(k.as_bytes());
        bytes.extend(v.to_bits().to_be_bytes());
    }
    bytes.extend(27u32.to_be_bytes());
    bytes.extend(b"Latency regression detected");
    bytes.extend(0.92f64.to_bits().to_be_bytes());
    assert_eq!(proposal_digest(&p), hex::encode(Sha256::digest(&bytes)));
    // The same value computed independently (Python hashlib + struct.pack, big-endian).
    assert_eq!(
        proposal_digest(&p),
        "fe79107d8b0882835ccefb1d3898d4c43c698d1f88e744039617fe60e4316846"
    );

    // Insertion order does not matter.
    let mut reordered = p.clone();
    reordered.params = [("beta".to_owned(), 2.0), ("alpha".to_owned(), 0.5)]
        .into_iter()
        .collect();
    assert_eq!(proposal_digest(&reordered), proposal_digest(&p));

    // Every field counts, and absent differs from zero.
    let base = proposal_digest(&p);
    let changes: Vec<fn(&mut v1::Proposal)> = vec![
        |p| p.id.push('x'),
        |p| p.timestamp_us += 1,
        |p| p.variant_id = Some(43),
        |p| p.variant_id = None,
        |p| {
            p.params.insert("alpha".into(), 0.6);
        },
        |p| p.params.clear(),
        |p| p.reason.push('!'),
        |p| p.confidence = 0.93,
    ];
    for change in changes {
        let mut q = p.clone();
        change(&mut q);
        assert_ne!(proposal_digest(&q), base);
    }
    let mut zero = p.clone();
    zero.variant_id = Some(0);
    let mut none = p;
    none.variant_id = None;
    assert_ne!(proposal_digest(&zero), proposal_digest(&none));
}

// AC-GOV-4
#[test]
fn client_verifies_the_approval_digest() {
    let p = proposal("prop_001", 0.92);
    let good = v1::Approval {
        proposal_id: p.id.clone(),
        proposal_digest: proposal_digest(&p),
        rollout: None,
    };
    assert_eq!(verify_approval(&p, &good), Ok(()));
    let mut tampered = good.clone();
    tampered.proposal_digest.replace_range(
        0..1,
        if tampered.proposal_digest.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    assert!(verify_approval(&p, &tampered).is_err());
    let mut other_id = good.clone();
    other_id.proposal_id = "prop_002".into();
    assert!(verify_approval(&p, &other_id).is_err());
    // An approval of a different variant under the same id does not verify.
    let mut changed = p.clone();
    changed.variant_id = Some(7);
    let swapped = v1::Approval {
        proposal_digest: proposal_digest(&changed),
        ..good
    };
    let err = verify_approval(&p, &swapped).unwrap_err();
    assert_eq!(err.expected, proposal_digest(&p));
}

// AC-GOV-5
#[test]
fn low_confidence_is_rejected_and_high_is_auto_approved() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(2));
    let effects = propose(&mut cp, "low", 0.5);
    assert_eq!(
        published(&effects),
        [&GovernanceCommand::Rejection(v1::Rejection {
            proposal_id: "low".into(),
            reason: "low_confidence".into()
        })]
    );
    let p = proposal("high", 0.8);
    let effects = msg(
        &mut cp,
        T0,
        &agent(),
        GovernanceCommand::Proposal(p.clone()),
    );
    assert_eq!(
        published(&effects),
        [&GovernanceCommand::Approval(v1::Approval {
            proposal_id: "high".into(),
            proposal_digest: proposal_digest(&p),
            rollout: Some(v1::RolloutConfig {
                initial_percent: 5.0,
                increment_per_minute: 10.0,
                max_percent: 50.0
            }),
        })]
    );
    assert_eq!(cp.in_flight().len(), 1);
    let mut nan = proposal("nan", 0.9);
    nan.confidence = f64::NAN;
    let effects = msg(&mut cp, T0, &agent(), GovernanceCommand::Proposal(nan));
    assert!(matches!(
        published(&effects)[..],
        [GovernanceCommand::Rejection(_)]
    ));
}

// AC-GOV-6
#[test]
fn paused_tenant_approves_nothing() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    propose(&mut cp, "p1", 0.9);
    act(&mut cp, Action::PauseAdaptation(v1::PauseAdaptation {}));
    assert!(cp.paused());
    let effects = msg(
        &mut cp,
        T0,
        &operator(),
        GovernanceCommand::Approval(v1::Approval {
            proposal_id: "p1".into(),
            ..Default::default()
        }),
    );
    assert!(published(&effects).is_empty());
    assert_eq!(reply_code(&effects), Some(v1::ErrorCode::Forbidden));
    let mut auto = ControlPlane::new(tenant(), auto_rules(5));
    act(&mut auto, Action::PauseAdaptation(v1::PauseAdaptation {}));
    let effects = propose(&mut auto, "p2", 0.99);
    assert!(
        matches!(published(&effects)[..], [GovernanceCommand::Rejection(r)] if r.reason == "paused")
    );
    assert!(auto.in_flight().is_empty());
}

// AC-GOV-7
#[test]
fn capacity_holds_proposals_until_a_ramp_ends() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    let effects = propose(&mut cp, "p2", 0.9);
    assert!(published(&effects).is_empty());
    assert_eq!(audits(&effects), [("proposal", "pending_capacity")]);
    assert_eq!(cp.pending().len(), 1);
    // 5 % + 10 %/min reaches 50 % after 4.5 minutes.
    let effects = cp.handle(GovEvent::Tick {
        at_us: T0 + 4 * 60_000_000,
    });
    assert!(published(&effects).is_empty());
    assert_eq!(cp.in_flight().len(), 1);
    let effects = cp.handle(GovEvent::Tick {
        at_us: T0 + 5 * 60_000_000,
    });
    assert_eq!(
        audits(&effects),
        [
            ("rollout", "completed"),
            ("proposal", "approved"),
            ("approval", "published")
        ]
    );
    assert!(
        matches!(published(&effects)[..], [GovernanceCommand::Approval(a)] if a.proposal_id == "p2")
    );
    assert!(cp.in_flight().contains_key("p2"));
    assert!(cp.pending().is_empty());
}

// AC-GOV-8
#[test]
fn operator_approves_and_rejects() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    let p1 = proposal("p1", 0.9);
    let effects = msg(
        &mut cp,
        T0,
        &agent(),
        GovernanceCommand::Proposal(p1.clone()),
    );
    assert_eq!(audits(&effects), [("proposal", "pending")]);
    propose(&mut cp, "p2", 0.9);
    assert_eq!(cp.pending().len(), 2);

    let rollout = v1::RolloutConfig {
        initial_percent: 5.0,
        increment_per_minute: 10.0,
        max_percent: 50.0,
    };
    let effects = msg(
        &mut cp,
        T0,
        &operator(),
        GovernanceCommand::Approval(v1::Approval {
            proposal_id: "p1".into(),
            proposal_digest: String::new(),
            rollout: Some(rollout),
        }),
    );
    assert_eq!(
        published(&effects),
        [&GovernanceCommand::Approval(v1::Approval {
            proposal_id: "p1".into(),
            proposal_digest: proposal_digest(&p1),
            rollout: Some(rollout),
        })]
    );
    let effects = msg(
        &mut cp,
        T0,
        &operator(),
        GovernanceCommand::Rejection(v1::Rejection {
            proposal_id: "p2".into(),
            reason: "no".into(),
        }),
    );
    assert!(
        matches!(published(&effects)[..], [GovernanceCommand::Rejection(r)] if r.proposal_id == "p2")
    );
    assert!(cp.pending().is_empty());
    for message in [
        GovernanceCommand::Approval(v1::Approval {
            proposal_id: "p9".into(),
            ..Default::default()
        }),
        GovernanceCommand::Rejection(v1::Rejection {
            proposal_id: "p9".into(),
            reason: String::new(),
        }),
    ] {
        let effects = msg(&mut cp, T0, &operator(), message);
        assert_eq!(reply_code(&effects), Some(v1::ErrorCode::NotFound));
        assert!(published(&effects).is_empty());
    }
}

#[test]
fn operator_approval_with_a_wrong_digest_is_refused() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    propose(&mut cp, "p1", 0.9);
    let effects = msg(
        &mut cp,
        T0,
        &who("t1", GovRole::Tier1),
        GovernanceCommand::Approval(v1::Approval {
            proposal_id: "p1".into(),
            proposal_digest: "00".repeat(32),
            rollout: None,
        }),
    );
    assert_eq!(reply_code(&effects), Some(v1::ErrorCode::DigestMismatch));
    assert!(published(&effects).is_empty());
    assert_eq!(cp.pending().len(), 1);
}

#[test]
fn duplicate_proposal_ids_are_refused_to_the_sender() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    propose(&mut cp, "p1", 0.9);
    let effects = propose(&mut cp, "p1", 0.95);
    assert_eq!(reply_code(&effects), Some(v1::ErrorCode::ProtocolError));
    assert!(published(&effects).is_empty());
    assert_eq!(
        cp.pending()[0].proposal.confidence.to_bits(),
        0.9f64.to_bits()
    );
}

// AC-GOV-9
#[test]
fn emergency_stop_cancels_pauses_and_resume_unpauses() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    propose(&mut cp, "p2", 0.9);
    assert_eq!((cp.in_flight().len(), cp.pending().len()), (1, 1));

    let stop = enforce(Action::EmergencyStop(v1::EmergencyStop {}));
    let effects = msg(&mut cp, T0 + 1, &operator(), stop.clone());
    let out = published(&effects);
    assert_eq!(out[0], &stop);
    assert_eq!(
        out.iter()
            .filter(|m| matches!(m, GovernanceCommand::Enforce(_)))
            .count(),
        1
    );
    assert!(matches!(out[1..], [GovernanceCommand::Rejection(r)] if r.proposal_id == "p2"));
    assert!(cp.paused());
    assert!(cp.in_flight().is_empty() && cp.pending().is_empty());
    assert!(audits(&effects).contains(&("rollout", "cancelled")));

    let resume = enforce(Action::ResumeAdaptation(v1::ResumeAdaptation {}));
    let effects = msg(&mut cp, T0 + 2, &operator(), resume.clone());
    assert_eq!(published(&effects), [&resume]);
    assert!(!cp.paused());
    let effects = msg(
        &mut cp,
        T0 + 3,
        &agent(),
        GovernanceCommand::Proposal(proposal("p3", 0.9)),
    );
    assert!(matches!(
        published(&effects)[..],
        [GovernanceCommand::Approval(_)]
    ));
}

#[test]
fn pause_holds_a_ramp_and_set_variant_cancels_it() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    act(&mut cp, Action::PauseAdaptation(v1::PauseAdaptation {}));
    cp.handle(GovEvent::Tick {
        at_us: T0 + 60 * 60_000_000,
    });
    assert_eq!(cp.in_flight()["p1"].percent_bp(), 500);
    let set = enforce(Action::SetVariant(v1::SetVariant { variant_id: 3 }));
    let effects = msg(&mut cp, T0, &operator(), set.clone());
    assert_eq!(published(&effects), [&set]);
    assert!(cp.in_flight().is_empty());
}

#[test]
fn invalid_input_is_dropped_counted_and_audited() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    let effects = cp.handle(GovEvent::Invalid {
        at_us: T0,
        reason: "undecodable".into(),
    });
    assert_eq!(audits(&effects), [("invalid", "dropped")]);
    assert!(published(&effects).is_empty());
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, GovEffect::Count { metric, .. } if *metric == METRIC_INVALID))
    );
}

// AC-GOV-10
#[test]
fn catalog_versions_only_grow() {
    let mut cp = ControlPlane::new(tenant(), Rules::default());
    let update = |version| {
        GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
            version,
            source_uri: "s3://catalog".into(),
        })
    };
    let effects = msg(&mut cp, T0, &operator(), update(3));
    assert_eq!(published(&effects), [&update(3)]);
    for stale in [3, 2, 0] {
        let effects = msg(&mut cp, T0, &operator(), update(stale));
        assert_eq!(reply_code(&effects), Some(v1::ErrorCode::CatalogStale));
        assert!(published(&effects).is_empty());
        assert_eq!(cp.catalog_version(), 3);
    }
    msg(&mut cp, T0, &operator(), update(4));
    assert_eq!(cp.catalog_version(), 4);
}

// AC-GOV-11
#[test]
fn every_message_is_audited_and_every_publish_follows_an_audit() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    let script: Vec<(Principal, GovernanceCommand)> = vec![
        (
            agent(),
            GovernanceCommand::Telemetry(v1::Telemetry::default()),
        ),
        (agent(), GovernanceCommand::Alert(v1::Alert::default())),
        (agent(), GovernanceCommand::Proposal(proposal("a", 0.9))),
        (agent(), GovernanceCommand::Proposal(proposal("b", 0.9))),
        (agent(), GovernanceCommand::Proposal(proposal("c", 0.1))),
        (
            agent(),
            enforce(Action::EmergencyStop(v1::EmergencyStop {})),
        ),
        (
            operator(),
            GovernanceCommand::Telemetry(v1::Telemetry::default()),
        ),
        (
            operator(),
            GovernanceCommand::Approval(v1::Approval::default()),
        ),
        (
            operator(),
            GovernanceCommand::Rejection(v1::Rejection::default()),
        ),
        (
            operator(),
            enforce(Action::EmergencyStop(v1::EmergencyStop {})),
        ),
        (
            operator(),
            GovernanceCommand::Enforce(v1::Enforce::default()),
        ),
        (
            operator(),
            enforce(Action::ResumeAdaptation(v1::ResumeAdaptation {})),
        ),
        (
            operator(),
            GovernanceCommand::CatalogUpdate(v1::CatalogUpdate::default()),
        ),
    ];
    for (from, message) in script {
        let effects = msg(&mut cp, T0, &from, message);
        assert!(!audits(&effects).is_empty());
        for (i, effect) in effects.iter().enumerate() {
            if let GovEffect::Publish(m) = effect {
                // Out::publish emits Audit(published), Count, Publish.
                assert!(i >= 2, "publish without an audit before it");
                assert!(matches!(&effects[i - 2], GovEffect::Audit(a)
                    if a.kind == MessageKind::of(m).as_str() && a.outcome == "published"));
            }
        }
        for effect in &effects {
            if let GovEffect::Audit(a) = effect {
                assert_eq!(a.tenant, "acme");
                assert_eq!(a.at_us, T0);
            }
        }
    }
}

// AC-LEASE-10
#[test]
fn a_checkpoint_restores_pending_rollouts_pause_and_catalog() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    propose(&mut cp, "p2", 0.9);
    msg(
        &mut cp,
        T0,
        &operator(),
        GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
            version: 7,
            source_uri: "https://catalog.example.com/v7.json".into(),
        }),
    );
    cp.handle(GovEvent::Tick {
        at_us: T0 + 60_000_000,
    });
    act(&mut cp, Action::PauseAdaptation(v1::PauseAdaptation {}));
    let stored = cp.checkpoint(42).to_json();
    let restored = ControlPlane::restore(
        tenant(),
        auto_rules(1),
        &Checkpoint::from_json(&stored).unwrap(),
    )
    .unwrap();
    assert_eq!(restored, cp);
    assert!(restored.paused() && restored.catalog_version() == 7);
    assert_eq!(restored.pending().len(), 1);
    assert!(restored.in_flight().contains_key("p1"));
    // The restored plane decides as the original would: the same effects for the same event.
    let (mut a, mut b) = (cp, restored);
    let resume = Action::ResumeAdaptation(v1::ResumeAdaptation {});
    assert_eq!(act(&mut a, resume.clone()), act(&mut b, resume));
}

// AC-LEASE-10
#[test]
fn a_bad_checkpoint_is_refused() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    propose(&mut cp, "p2", 0.9);
    let good = cp.checkpoint(3);
    let other = TenantId::parse("globex").unwrap();
    assert!(matches!(
        ControlPlane::restore(other, auto_rules(1), &good),
        Err(CheckpointError::WrongTenant { .. })
    ));
    let mut bad_hex = good.clone();
    bad_hex.pending[0].proposal = "zz".into();
    assert!(matches!(
        ControlPlane::restore(tenant(), auto_rules(1), &bad_hex),
        Err(CheckpointError::Proposal { index: 0, .. })
    ));
    // Two rollouts in flight under a limit of one: an invariant fails, so nothing is restored.
    let mut over = good.clone();
    let first = over.in_flight.values().next().cloned().unwrap();
    over.in_flight.insert("p9".into(), first);
    assert!(matches!(
        ControlPlane::restore(tenant(), auto_rules(1), &over),
        Err(CheckpointError::Invariant { .. })
    ));
    assert!(matches!(
        Checkpoint::from_json("{\"tenant\":1}"),
        Err(CheckpointError::Malformed(_))
    ));
}

// AC-LEASE-10
#[test]
fn resume_takes_a_valid_checkpoint_and_fails_closed_on_a_bad_one() {
    let mut cp = ControlPlane::new(tenant(), auto_rules(1));
    propose(&mut cp, "p1", 0.9);
    let good = cp.checkpoint(5);
    let (fresh, how) = ControlPlane::resume(tenant(), auto_rules(1), None, 9);
    assert!(how == Resumed::Fresh && !fresh.paused());
    let (resumed, how) = ControlPlane::resume(tenant(), auto_rules(1), Some(Ok(good.clone())), 7);
    assert_eq!(how, Resumed::Checkpoint { seq: 5, behind: 2 });
    assert_eq!(resumed, cp);
    // A checkpoint ahead of its chain, or one that does not restore: paused, nothing rolls out.
    let (ahead, how) = ControlPlane::resume(tenant(), auto_rules(1), Some(Ok(good.clone())), 4);
    assert!(matches!(how, Resumed::Refused(_)) && ahead.paused() && ahead.pending().is_empty());
    let mut bad = good;
    bad.tenant = "globex".into();
    let (refused, how) = ControlPlane::resume(tenant(), auto_rules(1), Some(Ok(bad)), 9);
    assert!(
        matches!(how, Resumed::Refused(CheckpointError::WrongTenant { .. })) && refused.paused()
    );
    let unparsed = Checkpoint::from_json("not json");
    let (refused, how) = ControlPlane::resume(tenant(), auto_rules(1), Some(unparsed), 9);
    assert!(matches!(how, Resumed::Refused(CheckpointError::Malformed(_))) && refused.paused());
}
