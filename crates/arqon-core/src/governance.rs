//! Governance decisions, sans-IO (`specs/governance.md`): who may send what, the canonical proposal
//! digest, and the per-tenant control plane that turns governance messages into effects.
//!
//! The Brain feeds [`ControlPlane::handle`] with [`GovEvent`]s (principal, time and message from the
//! Spine) and executes the returned [`GovEffect`]s in order: append audit entries, publish downstream
//! messages to the tenant's `gov.down` subject, reply errors to senders, count. Rollouts in flight are
//! driven by the [`Rollout`] machine.

mod authority;
pub mod checkpoint;
pub mod data_plane;
mod describe;
mod proposals;

pub use authority::{Direction, Forbidden, GovRole, MessageKind, authorize};
pub use describe::action_name;
pub use proposals::{
    DigestMismatch, proposal_digest, rollout_from_wire, rollout_to_wire, verify_approval,
};

use describe::describe;

use std::collections::BTreeMap;

use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1;
use arqon_proto::v1::enforce::Action;

use crate::audit::AuditEntry;
use crate::machine::{InvariantViolation, Machine};
use crate::rollout::{
    Digest, FULL_BP, ProposalRef, Rollout, RolloutConfig, RolloutEvent, RolloutPhase, RolloutState,
};

/// The actor name of decisions the control plane makes itself.
pub const CONTROL_PLANE_ACTOR: &str = "control-plane";

/// Counter of refused governance messages, labelled `kind` and `role`.
pub const METRIC_FORBIDDEN: &str = "arqonbus.brain.gov_forbidden";
/// Counter of dropped bus messages that were not governance messages of the tenant.
pub const METRIC_INVALID: &str = "arqonbus.brain.gov_invalid";
/// Counter of governance decisions, labelled `kind` and `outcome`.
pub const METRIC_DECISIONS: &str = "arqonbus.brain.gov_decisions";

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
mod property_tests;
#[cfg(test)]
mod tests;
