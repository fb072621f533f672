//! Governance decisions, sans-IO (`specs/governance.md`): who may send what, the canonical proposal
//! digest, and the per-tenant control plane that turns governance messages into effects.
//!
//! The Brain feeds [`ControlPlane::handle`] with [`GovEvent`]s (principal, time and message from the
//! Spine) and executes the returned [`GovEffect`]s in order: append audit entries, publish downstream
//! messages to the tenant's `gov.down` subject, reply errors to senders, count. Rollouts in flight are
//! driven by the [`Rollout`] machine.

pub mod data_plane;

use std::collections::BTreeMap;
use std::fmt;

use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1;
use arqon_proto::v1::enforce::Action;
use sha2::{Digest as _, Sha256};

use crate::audit::{AuditEntry, put_len, put_str};
use crate::machine::{InvariantViolation, Machine};
use crate::rollout::{
    Digest, FULL_BP, ProposalRef, Rollout, RolloutConfig, RolloutEvent, RolloutPhase,
    RolloutRejection, RolloutState,
};

/// Domain-separation prefix of the proposal digest.
const PROPOSAL_DOMAIN: &[u8] = b"arqon.proposal.v1\0";

/// The actor name of decisions the control plane makes itself.
pub const CONTROL_PLANE_ACTOR: &str = "control-plane";

/// Counter of refused governance messages, labelled `kind` and `role`.
pub const METRIC_FORBIDDEN: &str = "arqonbus.brain.gov_forbidden";
/// Counter of dropped bus messages that were not governance messages of the tenant.
pub const METRIC_INVALID: &str = "arqonbus.brain.gov_invalid";
/// Counter of governance decisions, labelled `kind` and `outcome`.
pub const METRIC_DECISIONS: &str = "arqonbus.brain.gov_decisions";

/// A principal's governance role, from its verified token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GovRole {
    /// A Tier-2 data plane (`agent`, `dataplane`): sends telemetry, proposals and alerts.
    DataPlane,
    /// The Tier-1 safe executor (`tier1`).
    Tier1,
    /// A human operator (`operator`, `admin`).
    Operator,
    /// The control plane itself; never taken from a token.
    ControlPlane,
    /// Anything else: may send nothing (fail closed).
    Unprivileged,
}

impl GovRole {
    /// Every role, for exhaustive checks.
    pub const ALL: [Self; 5] = [
        Self::DataPlane,
        Self::Tier1,
        Self::Operator,
        Self::ControlPlane,
        Self::Unprivileged,
    ];

    /// Maps a token's `role` claim; unknown, empty or internal names are [`GovRole::Unprivileged`].
    pub fn from_claim(role: &str) -> Self {
        match role {
            "agent" | "dataplane" => Self::DataPlane,
            "tier1" => Self::Tier1,
            "operator" | "admin" => Self::Operator,
            _ => Self::Unprivileged,
        }
    }

    /// Whether a session with this role gets the tenant's downstream governance messages
    /// (approvals, enforcement, catalog updates): data planes, Tier 1 and operators do; an
    /// unprivileged session only ever gets the errors addressed to it.
    pub fn receives_downstream(self) -> bool {
        matches!(self, Self::DataPlane | Self::Tier1 | Self::Operator)
    }

    /// Whether the role may use the admin API (`arq gov …`): operators only (`operator`, `admin`).
    pub fn may_administer(self) -> bool {
        self == Self::Operator
    }

    /// The role's stable name (metrics, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DataPlane => "dataplane",
            Self::Tier1 => "tier1",
            Self::Operator => "operator",
            Self::ControlPlane => "control-plane",
            Self::Unprivileged => "unprivileged",
        }
    }
}

impl fmt::Display for GovRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a governance message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Data plane to control plane.
    Upstream,
    /// Control plane to data planes.
    Downstream,
}

/// The kind of a governance message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// A metrics digest.
    Telemetry,
    /// A proposed change.
    Proposal,
    /// An alert.
    Alert,
    /// An approval with a digest and a rollout config.
    Approval,
    /// A rejection.
    Rejection,
    /// An override action.
    Enforce,
    /// A new catalog version.
    CatalogUpdate,
}

impl MessageKind {
    /// Every kind, for exhaustive checks.
    pub const ALL: [Self; 7] = [
        Self::Telemetry,
        Self::Proposal,
        Self::Alert,
        Self::Approval,
        Self::Rejection,
        Self::Enforce,
        Self::CatalogUpdate,
    ];

    /// The kind's stable name (metrics, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Proposal => "proposal",
            Self::Alert => "alert",
            Self::Approval => "approval",
            Self::Rejection => "rejection",
            Self::Enforce => "enforce",
            Self::CatalogUpdate => "catalog_update",
        }
    }

    /// The kind of a governance body.
    pub fn of(message: &GovernanceCommand) -> Self {
        match message {
            GovernanceCommand::Telemetry(_) => Self::Telemetry,
            GovernanceCommand::Proposal(_) => Self::Proposal,
            GovernanceCommand::Alert(_) => Self::Alert,
            GovernanceCommand::Approval(_) => Self::Approval,
            GovernanceCommand::Rejection(_) => Self::Rejection,
            GovernanceCommand::Enforce(_) => Self::Enforce,
            GovernanceCommand::CatalogUpdate(_) => Self::CatalogUpdate,
        }
    }

    /// Which way the kind travels.
    pub fn direction(self) -> Direction {
        match self {
            Self::Telemetry | Self::Proposal | Self::Alert => Direction::Upstream,
            Self::Approval | Self::Rejection | Self::Enforce | Self::CatalogUpdate => {
                Direction::Downstream
            }
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A principal whose role does not allow the message it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("role {role} may not send {kind}")]
pub struct Forbidden {
    /// The sender's role.
    pub role: GovRole,
    /// What it tried to send.
    pub kind: MessageKind,
}

/// The authorization matrix of `specs/governance.md`: may `role` send `kind`? Fails closed.
pub fn authorize(role: GovRole, kind: MessageKind) -> Result<(), Forbidden> {
    use GovRole::{ControlPlane, DataPlane, Operator, Tier1};
    let allowed = match kind {
        MessageKind::Telemetry | MessageKind::Proposal => matches!(role, DataPlane),
        MessageKind::Alert => matches!(role, DataPlane | ControlPlane),
        MessageKind::Approval
        | MessageKind::Rejection
        | MessageKind::Enforce
        | MessageKind::CatalogUpdate => matches!(role, Tier1 | Operator | ControlPlane),
    };
    if allowed {
        Ok(())
    } else {
        Err(Forbidden { role, kind })
    }
}

/// The canonical digest of a proposal: lowercase hex SHA-256 of the byte form in
/// `specs/governance.md` (independent of Protobuf encoding and map order).
pub fn proposal_digest(proposal: &v1::Proposal) -> String {
    let mut h = Sha256::new();
    h.update(PROPOSAL_DOMAIN);
    put_str(&mut h, &proposal.id);
    h.update(proposal.timestamp_us.to_be_bytes());
    match proposal.variant_id {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            h.update(v.to_be_bytes());
        }
    }
    // Sorted by key bytes whatever map type the generated code uses.
    let mut params: Vec<(&String, &f64)> = proposal.params.iter().collect();
    params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    put_len(&mut h, params.len());
    for (key, value) in params {
        put_str(&mut h, key);
        h.update(value.to_bits().to_be_bytes());
    }
    put_str(&mut h, &proposal.reason);
    h.update(proposal.confidence.to_bits().to_be_bytes());
    hex::encode(h.finalize())
}

/// An approval that is not for the proposal the data plane sent (seed 004's TOCTOU guard).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "approval for {approved_id:?} with digest {got} does not match proposal {proposal_id:?} ({expected})"
)]
pub struct DigestMismatch {
    /// The data plane's proposal id.
    pub proposal_id: String,
    /// The id the approval names.
    pub approved_id: String,
    /// The digest of the data plane's proposal.
    pub expected: String,
    /// The digest the approval carries.
    pub got: String,
}

/// Client side: checks that `approval` approves exactly `proposal`.
pub fn verify_approval(
    proposal: &v1::Proposal,
    approval: &v1::Approval,
) -> Result<(), DigestMismatch> {
    let expected = proposal_digest(proposal);
    if approval.proposal_id == proposal.id && approval.proposal_digest == expected {
        Ok(())
    } else {
        Err(DigestMismatch {
            proposal_id: proposal.id.clone(),
            approved_id: approval.proposal_id.clone(),
            expected,
            got: approval.proposal_digest.clone(),
        })
    }
}

/// Converts a wire rollout config (percent) to the Rollout machine's (basis points).
pub fn rollout_from_wire(config: &v1::RolloutConfig) -> Result<RolloutConfig, RolloutRejection> {
    RolloutConfig::from_percent(
        config.initial_percent,
        config.increment_per_minute,
        config.max_percent,
    )
}

/// Converts the Rollout machine's config (basis points) to the wire's (percent).
pub fn rollout_to_wire(config: &RolloutConfig) -> v1::RolloutConfig {
    let percent = |bp: u32| f64::from(bp) / 100.0;
    v1::RolloutConfig {
        initial_percent: percent(config.initial_bp),
        increment_per_minute: percent(config.increment_bp_per_minute),
        max_percent: percent(config.max_bp),
    }
}

/// What a message is about (audit `subject`) and its governance fields (audit `detail`).
fn describe(message: &GovernanceCommand) -> (String, BTreeMap<String, String>) {
    let mut d = BTreeMap::new();
    let subject = match message {
        GovernanceCommand::Telemetry(t) => {
            d.insert("metrics".into(), t.metrics.len().to_string());
            t.node_id.clone()
        }
        GovernanceCommand::Proposal(p) => {
            d.insert("digest".into(), proposal_digest(p));
            d.insert("confidence".into(), p.confidence.to_string());
            d.insert("reason".into(), p.reason.clone());
            if let Some(v) = p.variant_id {
                d.insert("variant_id".into(), v.to_string());
            }
            insert_params(&mut d, p.params.iter());
            p.id.clone()
        }
        GovernanceCommand::Alert(a) => {
            d.insert("severity".into(), a.severity().as_str_name().to_owned());
            d.insert("message".into(), a.message.clone());
            String::new()
        }
        GovernanceCommand::Approval(a) => {
            d.insert("digest".into(), a.proposal_digest.clone());
            if let Some(r) = &a.rollout {
                d.insert(
                    "rollout".into(),
                    format!(
                        "{}/{}/{}",
                        r.initial_percent, r.increment_per_minute, r.max_percent
                    ),
                );
            }
            a.proposal_id.clone()
        }
        GovernanceCommand::Rejection(r) => {
            d.insert("reason".into(), r.reason.clone());
            r.proposal_id.clone()
        }
        GovernanceCommand::Enforce(e) => {
            d.insert("reason".into(), e.reason.clone());
            match &e.action {
                Some(Action::SetVariant(v)) => {
                    d.insert("variant_id".into(), v.variant_id.to_string());
                }
                Some(Action::SetParams(p)) => insert_params(&mut d, p.params.iter()),
                _ => {}
            }
            action_name(e.action.as_ref()).to_owned()
        }
        GovernanceCommand::CatalogUpdate(c) => {
            d.insert("source_uri".into(), c.source_uri.clone());
            c.version.to_string()
        }
    };
    (subject, d)
}

fn insert_params<'a>(
    d: &mut BTreeMap<String, String>,
    params: impl Iterator<Item = (&'a String, &'a f64)>,
) {
    for (k, v) in params {
        d.insert(format!("param.{k}"), v.to_string());
    }
}

/// The stable name of an enforcement action.
pub fn action_name(action: Option<&Action>) -> &'static str {
    match action {
        Some(Action::SetVariant(_)) => "set_variant",
        Some(Action::SetParams(_)) => "set_params",
        Some(Action::EmergencyStop(_)) => "emergency_stop",
        Some(Action::PauseAdaptation(_)) => "pause_adaptation",
        Some(Action::ResumeAdaptation(_)) => "resume_adaptation",
        None => "none",
    }
}

/// Who sent a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The token's `sub`.
    pub user: UserId,
    /// Its governance role.
    pub role: GovRole,
}

/// An input to a tenant's control plane. Time is always an input.
#[derive(Clone, Debug, PartialEq)]
pub enum GovEvent {
    /// A governance message from a principal of the tenant.
    Message {
        /// Now, µs since the Unix epoch.
        at_us: u64,
        /// The sender, as stamped by the Shield.
        from: Principal,
        /// The body.
        message: GovernanceCommand,
    },
    /// A bus message that is not a well-formed governance message of this tenant (undecodable,
    /// another tenant's header, no sender): dropped, counted and audited.
    Invalid {
        /// Now, µs since the Unix epoch.
        at_us: u64,
        /// What is wrong, without payload bytes.
        reason: String,
    },
    /// Time passed: ramps advance, finished rollouts leave the in-flight set.
    Tick {
        /// Now, µs since the Unix epoch.
        at_us: u64,
    },
}

/// An instruction to the Brain, to be executed in order.
#[derive(Clone, Debug, PartialEq)]
pub enum GovEffect {
    /// Append to the tenant's audit chain. Must succeed before any later `Publish` is executed.
    Audit(AuditEntry),
    /// Publish a downstream message on the tenant's `gov.down` subject (every data plane gets it).
    Publish(GovernanceCommand),
    /// Answer the sender with an error.
    Reply {
        /// The sender.
        to: UserId,
        /// The error code.
        code: v1::ErrorCode,
        /// A description with no internals.
        message: String,
    },
    /// Increment a counter.
    Count {
        /// The metric name (`arqonbus.brain.…`).
        metric: &'static str,
        /// Its labels.
        labels: [(&'static str, &'static str); 2],
    },
}

/// The approval rules of a tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Proposals with a lower confidence are rejected.
    pub min_confidence: f64,
    /// At most this many rollouts ramp at once; further proposals wait.
    pub max_concurrent_rollouts: usize,
    /// Approve proposals that pass the rules without an operator.
    pub auto_approve: bool,
    /// The ramp of automatic approvals.
    pub default_rollout: RolloutConfig,
}

/// The defaults of `[governance]`; `arqon-config` takes them from here.
impl Default for Rules {
    fn default() -> Self {
        Self {
            min_confidence: 0.8,
            max_concurrent_rollouts: 1,
            auto_approve: false,
            default_rollout: RolloutConfig {
                initial_bp: 500,
                increment_bp_per_minute: 500,
                max_bp: FULL_BP,
            },
        }
    }
}

/// A proposal waiting for a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingProposal {
    /// The proposal as received.
    pub proposal: v1::Proposal,
    /// Its canonical digest.
    pub digest: String,
    /// Who proposed it.
    pub from: UserId,
}

/// The control plane of one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlPlane {
    tenant: TenantId,
    rules: Rules,
    paused: bool,
    catalog_version: u64,
    pending: Vec<PendingProposal>,
    in_flight: BTreeMap<String, RolloutState>,
}

/// Collects effects, auditing each decision and each published message.
struct Out<'a> {
    tenant: &'a TenantId,
    at_us: u64,
    effects: Vec<GovEffect>,
}

impl Out<'_> {
    fn audit(&mut self, actor: &str, role: GovRole, message: &GovernanceCommand, outcome: &str) {
        let (subject, detail) = describe(message);
        self.audit_raw(
            actor,
            role,
            MessageKind::of(message).as_str(),
            subject,
            outcome,
            detail,
        );
    }

    fn audit_raw(
        &mut self,
        actor: &str,
        role: GovRole,
        kind: &str,
        subject: String,
        outcome: &str,
        detail: BTreeMap<String, String>,
    ) {
        self.effects.push(GovEffect::Audit(AuditEntry {
            at_us: self.at_us,
            tenant: self.tenant.as_str().to_owned(),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            role: role.as_str().to_owned(),
            subject,
            outcome: outcome.to_owned(),
            detail,
        }));
    }

    /// Audits then publishes a downstream message sent by the control plane.
    fn publish(&mut self, message: GovernanceCommand) {
        self.audit(
            CONTROL_PLANE_ACTOR,
            GovRole::ControlPlane,
            &message,
            "published",
        );
        self.count(MessageKind::of(&message), "published");
        self.effects.push(GovEffect::Publish(message));
    }

    fn reply(&mut self, to: &UserId, code: v1::ErrorCode, message: impl Into<String>) {
        self.effects.push(GovEffect::Reply {
            to: to.clone(),
            code,
            message: message.into(),
        });
    }

    /// Audits `message` from `from` with `outcome`.
    fn received(&mut self, from: &Principal, message: &GovernanceCommand, outcome: &str) {
        self.audit(from.user.as_str(), from.role, message, outcome);
    }

    /// Audits `message` with `outcome` and answers its sender with `code`.
    fn refuse(
        &mut self,
        from: &Principal,
        message: &GovernanceCommand,
        outcome: &str,
        code: v1::ErrorCode,
        text: impl Into<String>,
    ) {
        self.received(from, message, outcome);
        self.reply(&from.user, code, text);
    }

    fn count(&mut self, kind: MessageKind, outcome: &'static str) {
        self.effects.push(GovEffect::Count {
            metric: METRIC_DECISIONS,
            labels: [("kind", kind.as_str()), ("outcome", outcome)],
        });
    }

    fn reject(&mut self, proposal_id: &str, reason: &str) {
        self.publish(GovernanceCommand::Rejection(v1::Rejection {
            proposal_id: proposal_id.to_owned(),
            reason: reason.to_owned(),
        }));
    }
}

impl ControlPlane {
    /// A fresh control plane for `tenant`: not paused, catalog version 0, nothing pending.
    pub fn new(tenant: TenantId, rules: Rules) -> Self {
        Self {
            tenant,
            rules,
            paused: false,
            catalog_version: 0,
            pending: Vec::new(),
            in_flight: BTreeMap::new(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Whether adaptation is paused (after `PauseAdaptation` or `EmergencyStop`).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The current catalog version.
    pub fn catalog_version(&self) -> u64 {
        self.catalog_version
    }

    /// Proposals waiting for a decision, oldest first.
    pub fn pending(&self) -> &[PendingProposal] {
        &self.pending
    }

    /// Rollouts in flight, by proposal id, with their Rollout machine state.
    pub fn in_flight(&self) -> &BTreeMap<String, RolloutState> {
        &self.in_flight
    }

    /// Checks the control plane's invariants (`specs/governance.md`): in-flight rollouts within the
    /// limit, pending and in-flight ids unique and disjoint, every stored digest the proposal's own,
    /// and every in-flight rollout valid for the `Rollout` machine.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |name, detail: String| Err(InvariantViolation { name, detail });
        if self.in_flight.len() > self.rules.max_concurrent_rollouts {
            return fail(
                "rollouts-within-limit",
                format!(
                    "{} in flight, limit {}",
                    self.in_flight.len(),
                    self.rules.max_concurrent_rollouts
                ),
            );
        }
        let mut ids: Vec<&str> = self
            .pending
            .iter()
            .map(|p| p.proposal.id.as_str())
            .collect();
        ids.extend(self.in_flight.keys().map(String::as_str));
        ids.sort_unstable();
        if let Some(twice) = ids.windows(2).find_map(|w| {
            if let [a, b] = w {
                (a == b).then_some(*a)
            } else {
                None
            }
        }) {
            return fail("proposal-ids-unique", format!("{twice:?} twice"));
        }
        if let Some(p) = self
            .pending
            .iter()
            .find(|p| p.digest != proposal_digest(&p.proposal))
        {
            return fail("digest-is-the-proposals", format!("{:?}", p.proposal.id));
        }
        for state in self.in_flight.values() {
            Rollout.check_invariants(state)?;
        }
        Ok(())
    }

    /// Handles one event and returns the effects to execute, in order.
    pub fn handle(&mut self, event: GovEvent) -> Vec<GovEffect> {
        let at_us = match &event {
            GovEvent::Message { at_us, .. }
            | GovEvent::Invalid { at_us, .. }
            | GovEvent::Tick { at_us } => *at_us,
        };
        let tenant = self.tenant.clone();
        let mut out = Out {
            tenant: &tenant,
            at_us,
            effects: Vec::new(),
        };
        match event {
            GovEvent::Tick { at_us } => self.tick(&mut out, at_us),
            GovEvent::Invalid { reason, .. } => {
                out.audit_raw(
                    "",
                    GovRole::Unprivileged,
                    "invalid",
                    String::new(),
                    "dropped",
                    BTreeMap::from([("reason".to_owned(), reason)]),
                );
                out.effects.push(GovEffect::Count {
                    metric: METRIC_INVALID,
                    labels: [("kind", "invalid"), ("role", "unprivileged")],
                });
            }
            GovEvent::Message {
                at_us,
                from,
                message,
            } => {
                self.message(&mut out, at_us, &from, message);
            }
        }
        out.effects
    }

    fn message(
        &mut self,
        out: &mut Out<'_>,
        at_us: u64,
        from: &Principal,
        message: GovernanceCommand,
    ) {
        let kind = MessageKind::of(&message);
        if let Err(forbidden) = authorize(from.role, kind) {
            out.received(from, &message, "forbidden");
            out.effects.push(GovEffect::Count {
                metric: METRIC_FORBIDDEN,
                labels: [("kind", kind.as_str()), ("role", from.role.as_str())],
            });
            out.reply(&from.user, v1::ErrorCode::Forbidden, forbidden.to_string());
            return;
        }
        match message {
            GovernanceCommand::Telemetry(_) | GovernanceCommand::Alert(_) => {
                out.received(from, &message, "received");
            }
            GovernanceCommand::Proposal(proposal) => self.proposal(out, at_us, from, proposal),
            GovernanceCommand::Approval(approval) => self.approve(out, at_us, from, &approval),
            GovernanceCommand::Rejection(rejection) => self.operator_reject(out, from, &rejection),
            GovernanceCommand::Enforce(enforce) => self.enforce(out, at_us, from, &enforce),
            GovernanceCommand::CatalogUpdate(update) => self.catalog(out, from, &update),
        }
    }

    fn is_known(&self, id: &str) -> bool {
        self.in_flight.contains_key(id) || self.pending.iter().any(|p| p.proposal.id == id)
    }

    /// The index of pending proposal `id`, or a `NOT_FOUND` refusal of `message`.
    fn find_pending(
        &self,
        out: &mut Out<'_>,
        from: &Principal,
        message: &GovernanceCommand,
        id: &str,
    ) -> Option<usize> {
        let index = self.pending.iter().position(|p| p.proposal.id == id);
        if index.is_none() {
            out.refuse(
                from,
                message,
                "not_found",
                v1::ErrorCode::NotFound,
                "no such pending proposal",
            );
        }
        index
    }

    fn at_capacity(&self) -> bool {
        self.in_flight.len() >= self.rules.max_concurrent_rollouts
    }

    fn proposal(
        &mut self,
        out: &mut Out<'_>,
        at_us: u64,
        from: &Principal,
        proposal: v1::Proposal,
    ) {
        let message = GovernanceCommand::Proposal(proposal.clone());
        if self.is_known(&proposal.id) {
            out.refuse(
                from,
                &message,
                "duplicate",
                v1::ErrorCode::ProtocolError,
                "a proposal with this id is already pending or in flight",
            );
            return;
        }
        let refusal = if self.paused {
            Some("paused")
        } else if proposal.confidence.is_nan() || proposal.confidence < self.rules.min_confidence {
            Some("low_confidence")
        } else {
            None
        };
        if let Some(reason) = refusal {
            out.received(from, &message, "rejected");
            out.count(MessageKind::Proposal, "rejected");
            out.reject(&proposal.id, reason);
            return;
        }
        let digest = proposal_digest(&proposal);
        let pending = PendingProposal {
            proposal,
            digest,
            from: from.user.clone(),
        };
        if self.rules.auto_approve && !self.at_capacity() {
            out.received(from, &message, "approved");
            out.count(MessageKind::Proposal, "approved");
            let config = self.rules.default_rollout;
            self.start_rollout(out, at_us, &pending, Some(config));
        } else {
            let outcome = if self.rules.auto_approve {
                "pending_capacity"
            } else {
                "pending"
            };
            out.received(from, &message, outcome);
            out.count(MessageKind::Proposal, "pending");
            self.pending.push(pending);
        }
    }

    /// Publishes the Approval and, for a ramp, puts the rollout in flight.
    fn start_rollout(
        &mut self,
        out: &mut Out<'_>,
        at_us: u64,
        pending: &PendingProposal,
        config: Option<RolloutConfig>,
    ) {
        let id = pending.proposal.id.clone();
        if let Some(config) = config {
            let proposal = ProposalRef {
                id: id.clone(),
                digest: Digest(pending.digest.clone()),
                variant: pending.proposal.variant_id,
            };
            // The config was validated and the digest is the proposal's own: the steps are
            // accepted by construction; a refusal would leave the rollout out of flight.
            if let Ok(state) = RolloutState::approved(proposal, config, at_us)
                && !matches!(state.phase, RolloutPhase::Complete { .. })
            {
                self.in_flight.insert(id.clone(), state);
            }
        }
        out.publish(GovernanceCommand::Approval(v1::Approval {
            proposal_id: id,
            proposal_digest: pending.digest.clone(),
            rollout: config.as_ref().map(rollout_to_wire),
        }));
    }

    fn approve(
        &mut self,
        out: &mut Out<'_>,
        at_us: u64,
        from: &Principal,
        approval: &v1::Approval,
    ) {
        let message = GovernanceCommand::Approval(approval.clone());
        let Some(index) = self.find_pending(out, from, &message, &approval.proposal_id) else {
            return;
        };
        let digest = &self.pending[index].digest;
        if !approval.proposal_digest.is_empty() && approval.proposal_digest != *digest {
            out.refuse(
                from,
                &message,
                "digest_mismatch",
                v1::ErrorCode::DigestMismatch,
                "the approval's digest is not the pending proposal's",
            );
            return;
        }
        let Ok(config) = approval.rollout.as_ref().map(rollout_from_wire).transpose() else {
            out.refuse(
                from,
                &message,
                "invalid_rollout",
                v1::ErrorCode::ProtocolError,
                "invalid rollout config",
            );
            return;
        };
        let refusal = if self.paused {
            Some("the tenant is paused")
        } else if config.is_some() && self.at_capacity() {
            Some("too many rollouts in flight")
        } else {
            None
        };
        if let Some(reason) = refusal {
            out.refuse(from, &message, "refused", v1::ErrorCode::Forbidden, reason);
            return;
        }
        out.received(from, &message, "accepted");
        out.count(MessageKind::Approval, "accepted");
        let pending = self.pending.remove(index);
        self.start_rollout(out, at_us, &pending, config);
    }

    fn operator_reject(&mut self, out: &mut Out<'_>, from: &Principal, rejection: &v1::Rejection) {
        let message = GovernanceCommand::Rejection(rejection.clone());
        let Some(index) = self.find_pending(out, from, &message, &rejection.proposal_id) else {
            return;
        };
        out.received(from, &message, "accepted");
        out.count(MessageKind::Rejection, "accepted");
        self.pending.remove(index);
        out.reject(&rejection.proposal_id, &rejection.reason);
    }

    fn enforce(&mut self, out: &mut Out<'_>, at_us: u64, from: &Principal, enforce: &v1::Enforce) {
        let message = GovernanceCommand::Enforce(enforce.clone());
        let Some(action) = &enforce.action else {
            out.refuse(
                from,
                &message,
                "invalid",
                v1::ErrorCode::ProtocolError,
                "enforce without an action",
            );
            return;
        };
        out.received(from, &message, "accepted");
        out.count(MessageKind::Enforce, "accepted");
        let mut cancelled = Vec::new();
        match action {
            Action::SetVariant(_) | Action::SetParams(_) => {
                cancelled = self.cancel_rollouts();
            }
            Action::EmergencyStop(_) => {
                self.paused = true;
                cancelled = self.cancel_rollouts();
            }
            Action::PauseAdaptation(_) => {
                self.paused = true;
                self.drive_rollouts(&RolloutEvent::Pause);
            }
            Action::ResumeAdaptation(_) => {
                self.paused = false;
                self.drive_rollouts(&RolloutEvent::Resume { now_us: at_us });
            }
        }
        // The enforcement goes out first: it is the latency-critical message.
        out.publish(message);
        for id in cancelled {
            out.audit_raw(
                CONTROL_PLANE_ACTOR,
                GovRole::ControlPlane,
                "rollout",
                id,
                "cancelled",
                BTreeMap::from([("by".into(), action_name(Some(action)).to_owned())]),
            );
        }
        if matches!(action, Action::EmergencyStop(_)) {
            for pending in std::mem::take(&mut self.pending) {
                out.reject(&pending.proposal.id, "emergency_stop");
            }
        }
    }

    /// Empties the in-flight set; returns the cancelled proposal ids.
    fn cancel_rollouts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.in_flight).into_keys().collect()
    }

    /// Steps every rollout in flight; rollouts whose phase does not accept the event are unchanged.
    fn drive_rollouts(&mut self, event: &RolloutEvent) {
        for state in self.in_flight.values_mut() {
            if let Ok(step) = Rollout.step(state, event) {
                *state = step.state;
            }
        }
    }

    fn catalog(&mut self, out: &mut Out<'_>, from: &Principal, update: &v1::CatalogUpdate) {
        let message = GovernanceCommand::CatalogUpdate(update.clone());
        if update.version <= self.catalog_version {
            out.refuse(
                from,
                &message,
                "stale",
                v1::ErrorCode::CatalogStale,
                format!(
                    "catalog version {} is not newer than {}",
                    update.version, self.catalog_version
                ),
            );
            return;
        }
        out.received(from, &message, "accepted");
        self.catalog_version = update.version;
        out.publish(message);
    }

    fn tick(&mut self, out: &mut Out<'_>, at_us: u64) {
        self.drive_rollouts(&RolloutEvent::Step { now_us: at_us });
        let done: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, s)| matches!(s.phase, RolloutPhase::Complete { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            self.in_flight.remove(&id);
            out.audit_raw(
                CONTROL_PLANE_ACTOR,
                GovRole::ControlPlane,
                "rollout",
                id,
                "completed",
                BTreeMap::new(),
            );
        }
        // Proposals that waited for capacity are approved in arrival order.
        while self.rules.auto_approve
            && !self.paused
            && !self.at_capacity()
            && !self.pending.is_empty()
        {
            let pending = self.pending.remove(0);
            out.audit(
                CONTROL_PLANE_ACTOR,
                GovRole::ControlPlane,
                &GovernanceCommand::Proposal(pending.proposal.clone()),
                "approved",
            );
            out.count(MessageKind::Proposal, "approved");
            let config = self.rules.default_rollout;
            self.start_rollout(out, at_us, &pending, Some(config));
        }
    }
}

#[cfg(test)]
mod tests {
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
}

#[cfg(test)]
mod properties {
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
        let rollout =
            prop::option::of((0u32..=20, 0u32..=30, 20u32..=100).prop_map(|(i, s, m)| {
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
}
