//! Pure rate and admission decisions: token buckets, connection admission, per-tenant caps.
//!
//! Nothing here reads a clock: every call takes `now_us` (µs since the Unix epoch). The Shield keeps
//! one [`Admission`] per node behind a lock and executes the verdicts; the verdicts themselves are
//! decided here (`specs/shield.md`, limits).

use std::collections::{BTreeMap, HashMap};

use arqon_proto::names::{TenantId, UserId};

/// One token, in the bucket's fixed-point unit (micro-tokens).
const UNIT: u64 = 1_000_000;

/// A rate: `per_sec` tokens refilled per second, holding at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: u32,
    /// Bucket capacity, in tokens.
    pub burst: u32,
}

/// A refused take: try again after `retry_after_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("rate limited; retry after {retry_after_ms} ms")]
pub struct Throttled {
    /// Milliseconds until one token is available (`u64::MAX` when the rate is zero).
    pub retry_after_ms: u64,
}

/// A token bucket in integer fixed point, so it is `Eq` and `Hash` and exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenBucket {
    rate: Rate,
    micro_tokens: u64,
    last_us: u64,
}

impl TokenBucket {
    /// A full bucket at `now_us`.
    pub fn new(rate: Rate, now_us: u64) -> Self {
        Self {
            rate,
            micro_tokens: u64::from(rate.burst).saturating_mul(UNIT),
            last_us: now_us,
        }
    }

    /// The bucket's rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Whole tokens available at `now_us` (without taking any).
    pub fn available(&self, now_us: u64) -> u64 {
        let mut probe = *self;
        probe.refill(now_us);
        probe.micro_tokens / UNIT
    }

    fn refill(&mut self, now_us: u64) {
        // A clock that goes back refills nothing and keeps the later mark.
        if now_us <= self.last_us {
            return;
        }
        let elapsed = now_us - self.last_us;
        let cap = u64::from(self.rate.burst).saturating_mul(UNIT);
        let added = elapsed.saturating_mul(u64::from(self.rate.per_sec));
        self.micro_tokens = self.micro_tokens.saturating_add(added).min(cap);
        self.last_us = now_us;
    }

    /// Takes one token at `now_us`, or says how long until one is available.
    pub fn try_take(&mut self, now_us: u64) -> Result<(), Throttled> {
        self.refill(now_us);
        if self.micro_tokens >= UNIT {
            self.micro_tokens -= UNIT;
            return Ok(());
        }
        let retry_after_ms = if self.rate.per_sec == 0 || self.rate.burst == 0 {
            u64::MAX
        } else {
            let missing = UNIT - self.micro_tokens;
            let wait_us = missing.div_ceil(u64::from(self.rate.per_sec));
            wait_us.div_ceil(1000).max(1)
        };
        Err(Throttled { retry_after_ms })
    }
}

/// Limits of one tenant; `[limits]` defaults with `[limits.tenants.<id>]` overrides in `arqon.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TenantLimits {
    /// Open connections of the tenant on this node.
    pub max_connections: u32,
    /// Open connections of one user of the tenant on this node.
    pub max_connections_per_user: u32,
    /// Rooms one session may hold.
    pub max_rooms: u32,
    /// Largest publish payload, in bytes.
    pub max_payload_bytes: u32,
    /// Publish rate of one connection.
    pub connection_publish: Rate,
    /// Publish rate of the whole tenant on this node.
    pub tenant_publish: Rate,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_user: 100,
            max_rooms: 64,
            max_payload_bytes: 60 * 1024,
            connection_publish: Rate {
                per_sec: 100,
                burst: 200,
            },
            tenant_publish: Rate {
                per_sec: 10_000,
                burst: 20_000,
            },
        }
    }
}

/// Node-wide admission settings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdmissionConfig {
    /// Open connections (including those still authenticating) on this node.
    pub max_connections: u32,
    /// Upgrades accepted per second, with a burst.
    pub accept: Rate,
    /// Retry-After sent when a connection cap (node, tenant or user) is hit.
    pub full_retry_after_ms: u64,
    /// Limits for tenants without an override.
    pub default_tenant: TenantLimits,
    /// Per-tenant overrides.
    pub tenants: BTreeMap<TenantId, TenantLimits>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            accept: Rate {
                per_sec: 2_000,
                burst: 10_000,
            },
            full_retry_after_ms: 1_000,
            default_tenant: TenantLimits::default(),
            tenants: BTreeMap::new(),
        }
    }
}

/// Why a connection was not admitted; also the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RejectReason {
    /// The node holds `max_connections`.
    NodeFull,
    /// Upgrades arrive faster than the accept rate.
    AcceptRate,
    /// The tenant holds its `max_connections`.
    TenantFull,
    /// The user holds its `max_connections_per_user`.
    UserFull,
    /// The node is draining.
    Draining,
}

impl RejectReason {
    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeFull => "node_full",
            Self::AcceptRate => "accept_rate",
            Self::TenantFull => "tenant_full",
            Self::UserFull => "user_full",
            Self::Draining => "draining",
        }
    }
}

/// An admission verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Admitted; a slot is held until released.
    Admit,
    /// Refused: HTTP 503 with `Retry-After`.
    Reject {
        /// Milliseconds the client should wait.
        retry_after_ms: u64,
        /// Why.
        reason: RejectReason,
    },
}

/// Node-wide admission state: connection counts, the accept bucket and per-tenant publish buckets.
#[derive(Clone, Debug)]
pub struct Admission {
    config: AdmissionConfig,
    accept: TokenBucket,
    open: u32,
    per_tenant: HashMap<TenantId, u32>,
    per_user: HashMap<(TenantId, UserId), u32>,
    tenant_publish: HashMap<TenantId, TokenBucket>,
    draining: bool,
}

impl Admission {
    /// Fresh admission state at `now_us`.
    pub fn new(config: AdmissionConfig, now_us: u64) -> Self {
        Self {
            accept: TokenBucket::new(config.accept, now_us),
            config,
            open: 0,
            per_tenant: HashMap::new(),
            per_user: HashMap::new(),
            tenant_publish: HashMap::new(),
            draining: false,
        }
    }

    /// The limits that apply to `tenant`.
    pub fn limits_for(&self, tenant: &TenantId) -> TenantLimits {
        self.config
            .tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.config.default_tenant)
    }

    /// Connections holding a node slot.
    pub fn open_connections(&self) -> u32 {
        self.open
    }

    /// Stops admitting: every later [`Admission::admit_connection`] is refused with `Draining`.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// First gate, before the token is even parsed: draining, node cap, accept rate.
    /// On `Admit` a node slot is held until [`Admission::release_connection`].
    pub fn admit_connection(&mut self, now_us: u64) -> Verdict {
        let full = self.config.full_retry_after_ms;
        if self.draining {
            return Verdict::Reject {
                retry_after_ms: full,
                reason: RejectReason::Draining,
            };
        }
        if self.open >= self.config.max_connections {
            return Verdict::Reject {
                retry_after_ms: full,
                reason: RejectReason::NodeFull,
            };
        }
        if let Err(throttled) = self.accept.try_take(now_us) {
            return Verdict::Reject {
                retry_after_ms: throttled.retry_after_ms.min(full.max(1)),
                reason: RejectReason::AcceptRate,
            };
        }
        self.open += 1;
        Verdict::Admit
    }

    /// Releases a node slot taken by an admitted connection.
    pub fn release_connection(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// Second gate, after the token is verified: the tenant's and the user's connection caps.
    /// On `Admit` both counts are held until [`Admission::release_identity`].
    pub fn admit_identity(&mut self, tenant: &TenantId, user: &UserId) -> Verdict {
        let limits = self.limits_for(tenant);
        let retry_after_ms = self.config.full_retry_after_ms;
        let tenant_open = self.per_tenant.get(tenant).copied().unwrap_or(0);
        if tenant_open >= limits.max_connections {
            return Verdict::Reject {
                retry_after_ms,
                reason: RejectReason::TenantFull,
            };
        }
        let key = (tenant.clone(), user.clone());
        let user_open = self.per_user.get(&key).copied().unwrap_or(0);
        if user_open >= limits.max_connections_per_user {
            return Verdict::Reject {
                retry_after_ms,
                reason: RejectReason::UserFull,
            };
        }
        *self.per_tenant.entry(tenant.clone()).or_insert(0) += 1;
        *self.per_user.entry(key).or_insert(0) += 1;
        Verdict::Admit
    }

    /// Releases the tenant and user counts held by an admitted identity.
    pub fn release_identity(&mut self, tenant: &TenantId, user: &UserId) {
        decrement(&mut self.per_tenant, tenant);
        decrement(&mut self.per_user, &(tenant.clone(), user.clone()));
    }

    /// Connections the tenant holds on this node.
    pub fn tenant_connections(&self, tenant: &TenantId) -> u32 {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// The tenant's users with connections on this node and how many each holds, by user id.
    pub fn tenant_users(&self, tenant: &TenantId) -> Vec<(UserId, u32)> {
        let mut users: Vec<(UserId, u32)> = self
            .per_user
            .iter()
            .filter(|((owner, _), _)| owner == tenant)
            .map(|((_, user), open)| (user.clone(), *open))
            .collect();
        users.sort();
        users
    }

    /// Takes one publish token from the tenant's node-wide bucket.
    pub fn take_tenant_publish(&mut self, tenant: &TenantId, now_us: u64) -> Result<(), Throttled> {
        let rate = self.limits_for(tenant).tenant_publish;
        self.tenant_publish
            .entry(tenant.clone())
            .or_insert_with(|| TokenBucket::new(rate, now_us))
            .try_take(now_us)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[test]
    fn ac_limits_bucket_allows_burst_then_throttles_then_refills() {
        let mut bucket = TokenBucket::new(
            Rate {
                per_sec: 10,
                burst: 3,
            },
            SEC,
        );
        for _ in 0..3 {
            assert_eq!(bucket.try_take(SEC), Ok(()));
        }
        // One token takes 100 ms at 10/s.
        assert_eq!(
            bucket.try_take(SEC),
            Err(Throttled {
                retry_after_ms: 100
            })
        );
        assert_eq!(
            bucket.try_take(SEC + 40_000),
            Err(Throttled { retry_after_ms: 60 })
        );
        assert_eq!(bucket.try_take(SEC + 100_000), Ok(()));
        // Refill is capped at the burst.
        assert_eq!(bucket.available(100 * SEC), 3);
    }

    #[test]
    fn bucket_ignores_a_clock_that_goes_back_and_zero_rate_never_refills() {
        let mut bucket = TokenBucket::new(
            Rate {
                per_sec: 1,
                burst: 1,
            },
            10 * SEC,
        );
        assert_eq!(bucket.try_take(10 * SEC), Ok(()));
        assert!(bucket.try_take(SEC).is_err());
        assert_eq!(bucket.try_take(11 * SEC), Ok(()));
        let mut zero = TokenBucket::new(
            Rate {
                per_sec: 0,
                burst: 0,
            },
            0,
        );
        assert_eq!(
            zero.try_take(1000 * SEC),
            Err(Throttled {
                retry_after_ms: u64::MAX
            })
        );
    }

    fn admission(max_connections: u32, accept: Rate, per_tenant: u32, per_user: u32) -> Admission {
        Admission::new(
            AdmissionConfig {
                max_connections,
                accept,
                full_retry_after_ms: 500,
                default_tenant: TenantLimits {
                    max_connections: per_tenant,
                    max_connections_per_user: per_user,
                    ..TenantLimits::default()
                },
                tenants: BTreeMap::new(),
            },
            0,
        )
    }

    // AC-SHIELD-9
    #[test]
    fn node_cap_and_accept_rate_reject_with_retry_after() {
        let fast = Rate {
            per_sec: 1_000,
            burst: 1_000,
        };
        let mut adm = admission(2, fast, 10, 10);
        assert_eq!(adm.admit_connection(0), Verdict::Admit);
        assert_eq!(adm.admit_connection(0), Verdict::Admit);
        assert_eq!(
            adm.admit_connection(0),
            Verdict::Reject {
                retry_after_ms: 500,
                reason: RejectReason::NodeFull
            }
        );
        adm.release_connection();
        assert_eq!(adm.admit_connection(0), Verdict::Admit);

        let slow = Rate {
            per_sec: 2,
            burst: 1,
        };
        let mut adm = admission(100, slow, 10, 10);
        assert_eq!(adm.admit_connection(0), Verdict::Admit);
        assert_eq!(
            adm.admit_connection(0),
            Verdict::Reject {
                retry_after_ms: 500,
                reason: RejectReason::AcceptRate
            }
        );
        assert_eq!(adm.admit_connection(SEC), Verdict::Admit);
        adm.start_draining();
        assert!(matches!(
            adm.admit_connection(10 * SEC),
            Verdict::Reject {
                reason: RejectReason::Draining,
                ..
            }
        ));
    }

    // AC-SHIELD-10
    #[test]
    fn tenant_and_user_caps_are_separate_per_tenant() {
        let fast = Rate {
            per_sec: 1_000,
            burst: 1_000,
        };
        let mut adm = admission(100, fast, 2, 1);
        let (a, b) = (tenant("acme"), tenant("beta"));
        assert_eq!(adm.admit_identity(&a, &user("u1")), Verdict::Admit);
        assert!(matches!(
            adm.admit_identity(&a, &user("u1")),
            Verdict::Reject {
                reason: RejectReason::UserFull,
                ..
            }
        ));
        assert_eq!(adm.admit_identity(&a, &user("u2")), Verdict::Admit);
        assert!(matches!(
            adm.admit_identity(&a, &user("u3")),
            Verdict::Reject {
                reason: RejectReason::TenantFull,
                ..
            }
        ));
        // A noisy tenant does not use up another tenant's capacity.
        assert_eq!(adm.admit_identity(&b, &user("u1")), Verdict::Admit);
        adm.release_identity(&a, &user("u1"));
        assert_eq!(adm.tenant_connections(&a), 1);
        assert_eq!(adm.admit_identity(&a, &user("u1")), Verdict::Admit);
    }

    // AC-CONSOLE-3
    #[test]
    fn tenant_users_lists_only_that_tenants_users() {
        let fast = Rate {
            per_sec: 1_000,
            burst: 1_000,
        };
        let mut adm = admission(100, fast, 10, 10);
        let (a, b) = (tenant("acme"), tenant("beta"));
        for (t, u) in [(&a, "zed"), (&a, "amy"), (&a, "zed"), (&b, "amy")] {
            assert_eq!(adm.admit_identity(t, &user(u)), Verdict::Admit);
        }
        assert_eq!(adm.tenant_users(&a), [(user("amy"), 1), (user("zed"), 2)]);
        assert_eq!(adm.tenant_users(&b), [(user("amy"), 1)]);
        adm.release_identity(&b, &user("amy"));
        assert_eq!(adm.tenant_users(&b), []);
    }

    #[test]
    fn tenant_override_and_tenant_publish_bucket() {
        let mut config = AdmissionConfig::default();
        let tight = TenantLimits {
            tenant_publish: Rate {
                per_sec: 1,
                burst: 1,
            },
            ..TenantLimits::default()
        };
        config.tenants.insert(tenant("noisy"), tight);
        let mut adm = Admission::new(config, 0);
        assert_eq!(adm.limits_for(&tenant("noisy")), tight);
        assert_eq!(adm.limits_for(&tenant("quiet")), TenantLimits::default());
        assert_eq!(adm.take_tenant_publish(&tenant("noisy"), 0), Ok(()));
        assert!(adm.take_tenant_publish(&tenant("noisy"), 0).is_err());
        assert_eq!(adm.take_tenant_publish(&tenant("quiet"), 0), Ok(()));
    }
}
