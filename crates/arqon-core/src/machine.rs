//! The one shape every `ArqonBus` state machine has: a pure step function plus its transition table as data.
//!
//! Session, Presence and Rollout each implement [`Machine`]. Everything else is derived from
//! that single definition: the Shield and Brain drivers call [`Machine::step`] and execute the
//! returned effects; the stateright models in `model/` explore the same `step`; the docs in
//! `state_machines/` are rendered from [`Machine::transitions`]; fuzz targets and property tests
//! call [`Machine::check_invariants`] after every step; transition coverage is counted against
//! the table.
//!
//! Rules for implementers:
//! - `step` is pure and deterministic. Time and randomness arrive inside events; nothing is read.
//! - An event that is not allowed in a state returns `Err(Self::Rejection)`; the state is unchanged.
//! - Every `Ok` step corresponds to exactly one row of `transitions()`, identified by
//!   `(state_kind(before), event_kind(event))`. A step whose pair has no row is a bug, and the
//!   coverage and docs tests catch it.

use std::fmt::Debug;
use std::hash::Hash;

/// One row of a machine's transition table: from a state kind, on an event kind, to a state kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    /// The state kind before the event (a value of [`Machine::state_kind`]).
    pub from: &'static str,
    /// The event kind (a value of [`Machine::event_kind`]).
    pub event: &'static str,
    /// The state kind after the event.
    pub to: &'static str,
    /// When the row applies, in words; empty when it always does.
    pub guard: &'static str,
    /// The effect kinds this row may emit.
    pub effects: &'static [&'static str],
}

/// Builds a [`Transition`] row in a `const` table.
pub const fn row(
    from: &'static str,
    event: &'static str,
    to: &'static str,
    guard: &'static str,
    effects: &'static [&'static str],
) -> Transition {
    Transition {
        from,
        event,
        to,
        guard,
        effects,
    }
}

/// A broken invariant, found by [`Machine::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant {name} violated: {detail}")]
pub struct InvariantViolation {
    /// The invariant's stable name, as listed in [`Machine::invariants`].
    pub name: &'static str,
    /// What was seen.
    pub detail: String,
}

/// The result of a successful step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<S, E> {
    /// The state after the event.
    pub state: S,
    /// The effects the I/O shell must execute, in order.
    pub effects: Vec<E>,
}

/// A deterministic state machine defined once and used everywhere.
pub trait Machine {
    /// Stable machine name: `session`, `presence` or `rollout`.
    const NAME: &'static str;
    /// The machine's state.
    type State: Clone + Debug + PartialEq + Eq + Hash;
    /// An input to the machine.
    type Event: Clone + Debug + PartialEq + Eq + Hash;
    /// An instruction to the I/O shell.
    type Effect: Clone + Debug + PartialEq + Eq + Hash;
    /// Why an event was refused in a state.
    type Rejection: std::error::Error + Clone + Debug + PartialEq + Eq;

    /// Applies `event` to `state`.
    fn step(
        &self,
        state: &Self::State,
        event: &Self::Event,
    ) -> Result<Step<Self::State, Self::Effect>, Self::Rejection>;

    /// The kind of a state, as named in the transition table.
    fn state_kind(state: &Self::State) -> &'static str;
    /// The kind of an event, as named in the transition table.
    fn event_kind(event: &Self::Event) -> &'static str;
    /// The kind of an effect, as named in the transition table.
    fn effect_kind(effect: &Self::Effect) -> &'static str;

    /// Every state kind, initial first.
    fn state_kinds() -> &'static [&'static str];
    /// Every event kind.
    fn event_kinds() -> &'static [&'static str];
    /// The transition table, as data.
    fn transitions() -> &'static [Transition];
    /// The invariants' names and their statements in words.
    fn invariants() -> &'static [(&'static str, &'static str)];
    /// Checks every invariant on `state`.
    fn check_invariants(&self, state: &Self::State) -> Result<(), InvariantViolation>;

    /// Checks the invariants that relate two states, on an accepted step from `before` to
    /// `after` by `event` (for example "the percent never rises while paused"). The names
    /// it reports are listed in [`Machine::invariants`] too. The default has none.
    fn check_step(
        &self,
        before: &Self::State,
        event: &Self::Event,
        after: &Step<Self::State, Self::Effect>,
    ) -> Result<(), InvariantViolation> {
        let _ = (before, event, after);
        Ok(())
    }
}

/// A machine with a finite, state-dependent event alphabet over a small universe of names and
/// times. This one generator feeds every derived check: the model checker explores all of it
/// breadth-first, fuzz targets and property tests pick from it with arbitrary bytes, and
/// transition coverage is measured over it.
pub trait Explore: Machine {
    /// The state exploration starts from.
    fn initial(&self) -> Self::State;
    /// Every event worth trying in `state`, valid or not, in a fixed order.
    fn alphabet(&self, state: &Self::State) -> Vec<Self::Event>;
}

/// The outcome of [`checked_step`]: the accepted step, or `None` when the event was refused.
pub type Checked<M> = Option<Step<<M as Machine>::State, <M as Machine>::Effect>>;

/// Applies `event` and checks every state and step invariant on the result.
///
/// Returns `Ok(None)` when the machine refused the event (the state is unchanged).
pub fn checked_step<M: Machine>(
    machine: &M,
    state: &M::State,
    event: &M::Event,
) -> Result<Checked<M>, InvariantViolation> {
    let Ok(step) = machine.step(state, event) else {
        return Ok(None);
    };
    let Some(row) = row_for::<M>(state, event, &step.state) else {
        return Err(InvariantViolation {
            name: "transition-in-table",
            detail: format!(
                "({}, {}) -> {} has no row",
                M::state_kind(state),
                M::event_kind(event),
                M::state_kind(&step.state)
            ),
        });
    };
    if let Some(stray) = step
        .effects
        .iter()
        .map(M::effect_kind)
        .find(|kind| !row.effects.contains(kind))
    {
        return Err(InvariantViolation {
            name: "transition-in-table",
            detail: format!(
                "({}, {}) emitted {stray}, which its row does not list",
                row.from, row.event
            ),
        });
    }
    machine.check_invariants(&step.state)?;
    machine.check_step(state, event, &step)?;
    Ok(Some(step))
}

/// Finds the table row that an accepted step used, if the table has one.
pub fn row_for<M: Machine>(
    before: &M::State,
    event: &M::Event,
    after: &M::State,
) -> Option<&'static Transition> {
    let from = M::state_kind(before);
    let on = M::event_kind(event);
    let to = M::state_kind(after);
    M::transitions()
        .iter()
        .find(|row| row.from == from && row.event == on && row.to == to)
}

/// Drives `machine` from its initial state, taking each event from its alphabet by the next
/// byte of `picks` (modulo the alphabet's length), with every invariant checked after every
/// accepted step. Fuzz targets and property tests share this one harness.
///
/// Returns the number of accepted steps, or the first violation with the step it happened at.
pub fn drive<M: Explore>(machine: &M, picks: &[u8]) -> Result<usize, (usize, InvariantViolation)> {
    let mut state = machine.initial();
    machine.check_invariants(&state).map_err(|v| (0, v))?;
    let mut accepted = 0;
    for (at, pick) in picks.iter().enumerate() {
        let alphabet = machine.alphabet(&state);
        let Some(event) = alphabet.get(usize::from(*pick) % alphabet.len().max(1)) else {
            break;
        };
        if let Some(step) = checked_step(machine, &state, event).map_err(|v| (at, v))? {
            state = step.state;
            accepted += 1;
        }
    }
    Ok(accepted)
}
