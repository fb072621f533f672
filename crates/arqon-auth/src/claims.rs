//! The verified claims of a session token, and their JSON form for minting.

use arqon_proto::names::{TenantId, UserId};
use serde_json::{Map, json};

/// The issuer dev tokens carry, and that dev mode expects.
pub const DEV_ISSUER: &str = "arqon-dev";
/// The audience dev tokens carry, and that dev mode expects.
pub const DEV_AUDIENCE: &str = "arqon";

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An application client: join, leave, publish.
    User,
    /// A service client: a user's rights on the bus. It has no governance rights; a data-plane
    /// service that sends telemetry and proposals holds `agent` or `dataplane`
    /// (`specs/governance.md`, `GovRole::from_claim`).
    Service,
    /// A tenant administrator: the admin API, and the operator's governance rights
    /// (approvals, rejections, enforcement).
    Admin,
    /// A governance data-plane agent (Tier 2): telemetry, proposals, alerts.
    Agent,
    /// Same governance rights as `agent` (`specs/governance.md`).
    Dataplane,
    /// The safe executor (Tier 1): approvals, rejections, enforcement, catalog updates.
    Tier1,
    /// A human operator: the Tier-1 rights, and the admin API.
    Operator,
}

impl Role {
    /// Every role: the room roles in order of privilege, then the governance roles.
    pub const ALL: [Self; 7] = [
        Self::User,
        Self::Service,
        Self::Admin,
        Self::Agent,
        Self::Dataplane,
        Self::Tier1,
        Self::Operator,
    ];

    /// Parses the `role` claim (`user`, `service`, `admin`, `agent`, `dataplane`, `tier1` or
    /// `operator`).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
            Self::Admin => "admin",
            Self::Agent => "agent",
            Self::Dataplane => "dataplane",
            Self::Tier1 => "tier1",
            Self::Operator => "operator",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Claims {
    /// The user (`sub`).
    pub sub: UserId,
    /// The tenant; the only source of a tenant for subjects.
    pub tenant: TenantId,
    /// The role.
    pub role: Role,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not before, unix seconds, when present.
    pub nbf: Option<u64>,
    /// The issuer.
    pub iss: String,
    /// The audiences.
    pub aud: Vec<String>,
}

impl Claims {
    /// Claims for a dev token: the dev issuer and audience, valid from `now` for `ttl_secs`.
    pub fn dev(tenant: TenantId, sub: UserId, role: Role, now: u64, ttl_secs: u64) -> Self {
        Self {
            sub,
            tenant,
            role,
            exp: now.saturating_add(ttl_secs),
            nbf: Some(now),
            iss: DEV_ISSUER.to_owned(),
            aud: vec![DEV_AUDIENCE.to_owned()],
        }
    }

    /// The JSON claims set, as minted (`aud` is a string when there is one audience).
    pub fn to_json(&self) -> serde_json::Value {
        let aud = match self.aud.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let mut map = Map::new();
        map.insert("sub".into(), json!(self.sub.as_str()));
        map.insert("tenant".into(), json!(self.tenant.as_str()));
        map.insert("role".into(), json!(self.role.as_str()));
        map.insert("exp".into(), json!(self.exp));
        if let Some(nbf) = self.nbf {
            map.insert("nbf".into(), json!(nbf));
        }
        map.insert("iss".into(), json!(self.iss));
        map.insert("aud".into(), aud);
        serde_json::Value::Object(map)
    }
}
