//! Trace sampling: which publishes get the message path's spans when traces are exported.
//!
//! A head decision per publish, made before any span exists: a client that sent a `traceparent`
//! has decided for itself (its sampled flag is followed, as OpenTelemetry's parent-based sampler
//! does); otherwise a fixed share of publishes is kept, chosen by a deterministic draw from the
//! session and request numbers. A publish the head decision dropped is still kept when it ends
//! in an error or a policy block: those are the traces an operator looks for.
//!
//! A ratio alone lets the tracing cost grow with the load, so the head decisions that keep a
//! publish (parent or ratio) also spend a token of a per-node [`TraceBudget`]: at most so many
//! traced publishes a second. Errors and blocks do not spend it.

use crate::limits::{Rate, TokenBucket};

/// Why a publish's spans were built (the `reason` label of `arqonbus.shield.traces_sampled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// The client's `traceparent` had its sampled flag set.
    Parent,
    /// The ratio draw kept it.
    Ratio,
    /// The head decision dropped it, and it was refused with an error.
    Error,
    /// The head decision dropped it, and the policy chain blocked it.
    Policy,
}

impl Kept {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Ratio => "ratio",
            Self::Error => "error",
            Self::Policy => "policy",
        }
    }
}

/// How a publish ended, as far as sampling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Published (or refused by nothing worth a trace).
    Published,
    /// The session answered it with an error.
    Refused,
    /// The policy chain blocked it.
    Blocked,
}

/// The sampler of one node: a share of publishes in `0.0..=1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceSampler {
    /// A draw below this keeps the publish; `u64::MAX` with `all` keeps every one.
    threshold: u64,
    all: bool,
}

impl TraceSampler {
    /// Keeps `ratio` of the publishes that carry no client decision; out-of-range values are
    /// clamped (`NaN` keeps none).
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        // 2^64 × ratio, computed in f64: exact enough for a share (1e-16 granularity).
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let threshold = (ratio * u64::MAX as f64) as u64;
        Self {
            threshold,
            all: ratio >= 1.0,
        }
    }

    /// The head decision for one publish. `parent` is the sampled flag of the client's
    /// `traceparent`, when it sent one; `session` and `request` number the publish.
    pub fn head(&self, parent: Option<bool>, session: u64, request: u64) -> Option<Kept> {
        match parent {
            Some(true) => Some(Kept::Parent),
            None if self.all || draw(session, request) < self.threshold => Some(Kept::Ratio),
            Some(false) | None => None,
        }
    }

    /// Whether a message taken off the spine gets its receive spans: only when its publisher's
    /// `traceparent` (`parent`: its sampled flag, when the message carried a valid one) says it was
    /// traced, so a receiving node follows the publishing node's decision.
    pub fn receive(parent: Option<bool>) -> bool {
        parent == Some(true)
    }

    /// Whether a publish the head decision dropped is kept after all, for how it ended.
    pub fn tail(outcome: Outcome) -> Option<Kept> {
        match outcome {
            Outcome::Published => None,
            Outcome::Refused => Some(Kept::Error),
            Outcome::Blocked => Some(Kept::Policy),
        }
    }
}

/// At most `max_per_sec` publishes a second traced by the head decision (a burst of as many).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceBudget(Option<TokenBucket>);

impl TraceBudget {
    /// A full budget at `now_us`; `max_per_sec` 0 sets no limit.
    pub fn new(max_per_sec: u32, now_us: u64) -> Self {
        Self((max_per_sec > 0).then(|| {
            TokenBucket::new(
                Rate {
                    per_sec: max_per_sec,
                    burst: max_per_sec,
                },
                now_us,
            )
        }))
    }

    /// Whether one more publish may be traced at `now_us` (spending a token when it may).
    pub fn admit(&mut self, now_us: u64) -> bool {
        self.0
            .as_mut()
            .is_none_or(|bucket| bucket.try_take(now_us).is_ok())
    }
}

/// A well-mixed 64-bit number from a publish's session and request (splitmix64 of their mix):
/// consecutive requests of one session draw independently, and the same pair always draws the same.
pub fn draw(session: u64, request: u64) -> u64 {
    let mut z = session
        .rotate_left(32)
        .wrapping_add(request)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-OBS-10
    #[test]
    fn the_ratio_keeps_its_share_of_publishes_within_a_tenth() {
        for ratio in [0.001, 0.01, 0.1, 0.5] {
            let sampler = TraceSampler::new(ratio);
            let n = 200_000u64;
            let kept = (0..n)
                .filter(|i| sampler.head(None, 7 + i / 1000, i % 1000).is_some())
                .count();
            #[allow(clippy::cast_precision_loss)]
            let share = kept as f64 / n as f64;
            assert!(
                (share - ratio).abs() <= ratio * 0.1,
                "ratio {ratio}: kept {share}"
            );
        }
    }

    // AC-OBS-10
    #[test]
    fn the_client_decides_when_it_sent_a_traceparent() {
        let none = TraceSampler::new(0.0);
        let all = TraceSampler::new(1.0);
        assert_eq!(none.head(Some(true), 1, 1), Some(Kept::Parent));
        assert_eq!(all.head(Some(false), 1, 1), None);
        assert_eq!(none.head(None, 1, 1), None);
        assert!((0..1000).all(|r| all.head(None, 3, r) == Some(Kept::Ratio)));
        assert_eq!(TraceSampler::new(f64::NAN), none);
        assert_eq!(TraceSampler::new(7.0), all);
    }

    // AC-OBS-10
    #[test]
    fn a_receiver_follows_the_publishers_decision() {
        assert!(TraceSampler::receive(Some(true)));
        assert!(!TraceSampler::receive(Some(false)));
        assert!(!TraceSampler::receive(None));
    }

    // AC-OBS-11
    #[test]
    fn errors_and_policy_blocks_are_always_kept() {
        assert_eq!(TraceSampler::tail(Outcome::Refused), Some(Kept::Error));
        assert_eq!(TraceSampler::tail(Outcome::Blocked), Some(Kept::Policy));
        assert_eq!(TraceSampler::tail(Outcome::Published), None);
    }

    // AC-OBS-12
    #[test]
    fn the_budget_caps_traced_publishes_a_second() {
        const SEC: u64 = 1_000_000;
        let mut budget = TraceBudget::new(3, 0);
        let admitted = (0..10).filter(|i| budget.admit(i * 1000)).count();
        assert_eq!(admitted, 3, "a burst of the rate, then none");
        assert!(
            budget.admit(SEC / 3 + 10_000),
            "a token back a third of a second later"
        );
        assert!(!budget.admit(SEC / 3 + 20_000));
        let mut unlimited = TraceBudget::new(0, 0);
        assert!((0..10_000).all(|i| unlimited.admit(i)));
    }

    #[test]
    fn the_draw_is_deterministic() {
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(1, 2), draw(2, 1));
    }
}
