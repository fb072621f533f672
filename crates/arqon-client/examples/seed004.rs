//! Seed 004's "Example Integration", almost verbatim, against a real node started in this process
//! (embedded spine, auto-approve rules, file audit): propose, receive the digest-checked approval,
//! ramp with a `RolloutTracker`, then obey a Tier-1 emergency stop.
//!
//! `cargo run -p arqon-client --example seed004`

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use arqon_auth::{Claims, DevKeys, Role};
use arqon_client::{
    BusClient, DownstreamMessage, EnforcementAction, Proposal, RolloutTracker, UpstreamMessage,
};
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1;
use arqon_shield::Node;

/// Seed of the tracker's coin flips (a fixed seed replays exactly).
const SEED: u64 = 4;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn token(keys: &DevKeys, user: &str, role: Role) -> anyhow::Result<String> {
    let claims = Claims::dev(
        TenantId::parse("acme")?,
        UserId::parse(user)?,
        role,
        now_us() / 1_000_000,
        600,
    );
    Ok(keys.mint(&claims)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A node whose rules approve confident proposals with a 5 % → 50 % ramp, +10 points a minute.
    let dir = tempfile::tempdir()?;
    let keys = DevKeys::generate()?;
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse()?;
    config.auth.jwks = Some(keys.to_jwks_json());
    config.governance.audit_path = dir.path().to_path_buf();
    config.governance.auto_approve = true;
    config.governance.default_rollout.initial_percent = 5.0;
    config.governance.default_rollout.increment_per_minute = 10.0;
    config.governance.default_rollout.max_percent = 50.0;
    let node = Node::start(config).await?;
    let mut bus_client =
        BusClient::connect(&node.socket_url(), &token(&keys, "agent-1", Role::Agent)?).await?;
    let tier1 =
        BusClient::connect(&node.socket_url(), &token(&keys, "tier1", Role::Tier1)?).await?;
    let requests = 0..1_000;
    let (mut new_variant, mut old_variant) = (0u32, 0u32);
    let mut apply_new_variant = |_| new_variant += 1;
    let mut apply_old_variant = |_| old_variant += 1;

    // 1. Send proposal to ArqonBus
    let proposal = UpstreamMessage::Proposal(Proposal {
        id: "prop_001".to_string(),
        variant_id: Some(42),
        reason: "Latency regression detected".to_string(),
        confidence: 0.92,
        ..Default::default()
    });
    bus_client.send(proposal).await?;

    // 2. Receive approval with gradual rollout (its digest was checked against what we sent)
    let approval = bus_client.recv().await?;
    let mut tracker;
    if let DownstreamMessage::Approval { rollout, .. } = approval {
        let mut ramp = RolloutTracker::new(rollout.proposal, rollout.config, now_us(), SEED)?;

        // 3. Apply variant gradually
        for request in requests {
            if ramp.should_apply() {
                apply_new_variant(request);
            } else {
                apply_old_variant(request);
            }
        }
        println!(
            "approved at {} bp: {new_variant} requests on the new variant, {old_variant} on the old",
            ramp.percent_bp()
        );
        ramp.step();
        println!("one minute later: {} bp", ramp.percent_bp());
        tracker = Some(ramp);
    } else {
        bail!("expected an approval, got {approval:?}");
    }

    // Tier 1 pulls the kill switch.
    tier1
        .send_command(GovernanceCommand::Enforce(v1::Enforce {
            reason: "error budget exhausted".to_string(),
            action: Some(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {})),
        }))
        .await?;

    // 4. Handle emergency stop
    let msg = bus_client.recv().await?;
    let mut revert_to_safe_baseline = || {
        if let Some(ramp) = tracker.as_mut() {
            ramp.emergency_stop();
            println!("reverted to the safe baseline ({} bp)", ramp.percent_bp());
        }
    };
    let pause_all_adaptation = || println!("adaptation paused: {}", bus_client.paused());
    if let DownstreamMessage::Enforce {
        action: EnforcementAction::EmergencyStop,
        ..
    } = msg
    {
        revert_to_safe_baseline();
        pause_all_adaptation();
    } else {
        bail!("expected an emergency stop, got {msg:?}");
    }
    Ok(())
}
