//! The only place a Spine (NATS) subject is built: from a verified `TenantId` and a grammar-checked `RoomName`.
//!
//! Scheme (`specs/spine.md`):
//!
//! | subject | constructor |
//! | --- | --- |
//! | `arqon.v1.<tenant>.room.<room>` | [`Subject::room`] |
//! | `arqon.v1.<tenant>.live.<room>` | [`Subject::room_live`] |
//! | `arqon.v1.<tenant>.presence` | [`Subject::presence`] |
//! | `arqon.v1.<tenant>.gov.up` | [`Subject::gov_up`] |
//! | `arqon.v1.<tenant>.gov.down` | [`Subject::gov_down`] |
//! | `arqon.v1.<tenant>.gov.audit` | [`Subject::gov_audit`] |
//! | `arqon.v1.<tenant>.gov.cmd` | [`Subject::gov_cmd`] |
//! | `arqon.v1.<tenant>.gov.reply` | [`Subject::gov_reply`] |
//! | `arqon.v1._sys.heartbeat` | [`Subject::heartbeat`] |
//!
//! Neither names nor fixed tokens contain `.`, `*`, `>` or whitespace, so a subject never holds a
//! wildcard and each input fills exactly one token. The one wildcard string,
//! [`room_history_filter`], is a `JetStream` stream's subject filter, never a subject. `_sys` is not a valid tenant id (a tenant cannot
//! start with `_`), so the system subject cannot collide with any tenant's. There is deliberately no
//! constructor from a string.

use std::fmt;
use std::sync::Arc;

use arqon_proto::names::{RoomName, TenantId};

/// The first two tokens of every subject: product and scheme version.
pub const PREFIX: &str = "arqon.v1";

/// The token standing in the tenant position of system subjects; never a valid tenant id.
pub const SYSTEM_TOKEN: &str = "_sys";

/// What a subject carries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectKind {
    /// Routed envelopes of one room of a tenant.
    Room(RoomName),
    /// The same envelopes as stored in the tenant's history, republished with their offsets.
    RoomLive(RoomName),
    /// Presence CRDT deltas of a tenant.
    Presence,
    /// Governance messages from a node to the control plane.
    GovUp,
    /// Governance messages from the control plane to the nodes.
    GovDown,
    /// The tenant's governance audit chain (a `JetStream` subject).
    GovAudit,
    /// Operator commands and reads forwarded by a node that is not the tenant's writer.
    GovCmd,
    /// The writer's answers to forwarded commands.
    GovReply,
    /// Node liveness; carries no tenant data.
    Heartbeat,
}

/// A NATS subject of the `arqon.v1` scheme; built only from typed names, never from a client string.
///
/// Cloning is a reference-count increment: the Spine clones the subject into every message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject(Arc<Parts>);

/// Hashes the text alone: it determines the tenant and the kind, so subjects that are equal hash
/// alike, and a lookup (the Spine's, per message) hashes one string instead of three.
impl std::hash::Hash for Subject {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.text.hash(state);
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Parts {
    text: String,
    tenant: Option<TenantId>,
    kind: SubjectKind,
}

impl Subject {
    /// `arqon.v1.<tenant>.room.<room>`: the messages of one room.
    pub fn room(tenant: &TenantId, room: &RoomName) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::Room(room.clone()))
    }

    /// `arqon.v1.<tenant>.live.<room>`: a room's messages as the history store republishes them,
    /// with their offsets (live delivery when the tenant keeps history on NATS).
    pub fn room_live(tenant: &TenantId, room: &RoomName) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::RoomLive(room.clone()))
    }

    /// The room this subject carries, for room and live-room subjects.
    pub fn room_name(&self) -> Option<&RoomName> {
        match &self.0.kind {
            SubjectKind::Room(room) | SubjectKind::RoomLive(room) => Some(room),
            _ => None,
        }
    }

    /// `arqon.v1.<tenant>.presence`: a tenant's presence deltas.
    pub fn presence(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::Presence)
    }

    /// `arqon.v1.<tenant>.gov.up`: governance, node to control plane.
    pub fn gov_up(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::GovUp)
    }

    /// `arqon.v1.<tenant>.gov.down`: governance, control plane to nodes.
    pub fn gov_down(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::GovDown)
    }

    /// `arqon.v1.<tenant>.gov.audit`: the tenant's governance audit records.
    pub fn gov_audit(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::GovAudit)
    }

    /// `arqon.v1.<tenant>.gov.cmd`: operator commands forwarded to the tenant's writer.
    pub fn gov_cmd(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::GovCmd)
    }

    /// `arqon.v1.<tenant>.gov.reply`: the writer's answers to forwarded commands.
    pub fn gov_reply(tenant: &TenantId) -> Self {
        Self::tenant_scoped(tenant, SubjectKind::GovReply)
    }

    /// `arqon.v1._sys.heartbeat`: node liveness, with no tenant data.
    pub fn heartbeat() -> Self {
        Self(Arc::new(Parts {
            text: format!("{PREFIX}.{SYSTEM_TOKEN}.heartbeat"),
            tenant: None,
            kind: SubjectKind::Heartbeat,
        }))
    }

    fn tenant_scoped(tenant: &TenantId, kind: SubjectKind) -> Self {
        let t = tenant.as_str();
        let text = match &kind {
            SubjectKind::Room(room) => format!("{PREFIX}.{t}.room.{}", room.as_str()),
            SubjectKind::RoomLive(room) => format!("{PREFIX}.{t}.live.{}", room.as_str()),
            SubjectKind::Presence => format!("{PREFIX}.{t}.presence"),
            SubjectKind::GovUp => format!("{PREFIX}.{t}.gov.up"),
            SubjectKind::GovDown => format!("{PREFIX}.{t}.gov.down"),
            SubjectKind::GovAudit => format!("{PREFIX}.{t}.gov.audit"),
            SubjectKind::GovCmd => format!("{PREFIX}.{t}.gov.cmd"),
            SubjectKind::GovReply => format!("{PREFIX}.{t}.gov.reply"),
            SubjectKind::Heartbeat => format!("{PREFIX}.{SYSTEM_TOKEN}.heartbeat"),
        };
        Self(Arc::new(Parts {
            text,
            tenant: Some(tenant.clone()),
            kind,
        }))
    }

    /// The subject as NATS sees it.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// The tenant the subject belongs to; `None` for system subjects.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.0.tenant.as_ref()
    }

    /// What the subject carries.
    pub fn kind(&self) -> &SubjectKind {
        &self.0.kind
    }
}

/// The subject filters of a tenant's history stream: its rooms (`arqon.v1.<tenant>.room.*`) and
/// where the stream republishes them (`arqon.v1.<tenant>.live.{{wildcard(1)}}`, room for room).
pub fn room_history_filter(tenant: &TenantId) -> (String, String) {
    let t = tenant.as_str();
    (
        format!("{PREFIX}.{t}.room.*"),
        format!("{PREFIX}.{t}.live.{{{{wildcard(1)}}}}"),
    )
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        &self.0.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).unwrap()
    }

    /// NATS subject matching: `*` matches one token, a final `>` matches one or more tokens.
    fn nats_matches(filter: &str, subject: &str) -> bool {
        let mut f = filter.split('.');
        let mut s = subject.split('.');
        loop {
            match (f.next(), s.next()) {
                (Some(">"), Some(_)) | (None, None) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    }

    /// Every subject a tenant's traffic can use, for a given room.
    fn all_subjects(t: &TenantId, r: &RoomName) -> Vec<Subject> {
        vec![
            Subject::room(t, r),
            Subject::room_live(t, r),
            Subject::presence(t),
            Subject::gov_up(t),
            Subject::gov_down(t),
            Subject::gov_audit(t),
            Subject::gov_cmd(t),
            Subject::gov_reply(t),
        ]
    }

    fn assert_well_formed(s: &Subject) {
        let text = s.as_str();
        assert!(text.starts_with("arqon.v1."), "{text}");
        assert!(!text.contains(['*', '>']), "{text} holds a wildcard");
        assert!(!text.chars().any(char::is_whitespace), "{text}");
        assert!(text.split('.').all(|t| !t.is_empty()), "{text}");
    }

    // AC-SPINE-1
    #[test]
    fn ac_spine_1_scheme() {
        let t = tenant("acme");
        let r = room("General_Chat-2");
        let cases = [
            (Subject::room(&t, &r), "arqon.v1.acme.room.General_Chat-2"),
            (
                Subject::room_live(&t, &r),
                "arqon.v1.acme.live.General_Chat-2",
            ),
            (Subject::presence(&t), "arqon.v1.acme.presence"),
            (Subject::gov_up(&t), "arqon.v1.acme.gov.up"),
            (Subject::gov_down(&t), "arqon.v1.acme.gov.down"),
            (Subject::gov_audit(&t), "arqon.v1.acme.gov.audit"),
            (Subject::gov_cmd(&t), "arqon.v1.acme.gov.cmd"),
            (Subject::gov_reply(&t), "arqon.v1.acme.gov.reply"),
            (Subject::heartbeat(), "arqon.v1._sys.heartbeat"),
        ];
        for (subject, want) in cases {
            assert_eq!(subject.as_str(), want);
            assert_eq!(subject.to_string(), want);
            assert_well_formed(&subject);
        }
        assert_eq!(Subject::room(&t, &r).tenant(), Some(&t));
        assert_eq!(Subject::room(&t, &r).kind(), &SubjectKind::Room(r));
        assert_eq!(Subject::heartbeat().tenant(), None);
    }

    #[test]
    fn system_token_is_not_a_tenant() {
        assert!(TenantId::parse(SYSTEM_TOKEN).is_err());
    }

    #[test]
    fn matcher_follows_nats_rules() {
        assert!(nats_matches("a.*.c", "a.b.c"));
        assert!(nats_matches("a.>", "a.b.c"));
        assert!(!nats_matches("a.>", "a"));
        assert!(!nats_matches("a.*", "a.b.c"));
        assert!(!nats_matches("a.b", "a.c"));
    }

    fn tenant_strategy() -> impl Strategy<Value = TenantId> {
        "[a-z0-9][a-z0-9_-]{0,12}".prop_map(|s| TenantId::parse(&s).unwrap())
    }

    fn room_strategy() -> impl Strategy<Value = RoomName> {
        "[A-Za-z0-9_-]{1,12}".prop_map(|s| RoomName::parse(&s).unwrap())
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED_5B1E),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        // AC-SPINE-2
        #[test]
        fn ac_spine_2_injective(
            t1 in tenant_strategy(), r1 in room_strategy(),
            t2 in tenant_strategy(), r2 in room_strategy(),
        ) {
            let a = Subject::room(&t1, &r1);
            let b = Subject::room(&t2, &r2);
            prop_assert_eq!(a.as_str() == b.as_str(), (t1 == t2) && (r1 == r2));
            assert_well_formed(&a);
            // Different kinds never collide either.
            let mut texts: Vec<String> = all_subjects(&t1, &r1)
                .into_iter()
                .chain([Subject::heartbeat()])
                .map(|s| s.as_str().to_owned())
                .collect();
            texts.sort();
            texts.dedup();
            prop_assert_eq!(texts.len(), all_subjects(&t1, &r1).len() + 1);
        }

        // AC-SPINE-3
        #[test]
        fn ac_spine_3_no_cross_tenant_match(
            t1 in tenant_strategy(), r1 in room_strategy(),
            t2 in tenant_strategy(), r2 in room_strategy(),
        ) {
            prop_assume!(t1 != t2);
            for sub in all_subjects(&t1, &r1) {
                for other in all_subjects(&t2, &r2).into_iter().chain([Subject::heartbeat()]) {
                    prop_assert!(!nats_matches(sub.as_str(), other.as_str()));
                    prop_assert!(!nats_matches(other.as_str(), sub.as_str()));
                }
            }
        }
    }
}
