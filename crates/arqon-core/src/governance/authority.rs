//! Who may send what: governance roles from the token's claim, the kinds of governance messages, and
//! the authorization matrix of `specs/governance.md` (fail closed).

use std::fmt;

use arqon_proto::GovernanceCommand;

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
