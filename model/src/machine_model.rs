//! One `arqon-core` machine alone as a stateright model: breadth-first over its exploration alphabet.
//!
//! The model's transition is [`arqon_core::machine::checked_step`], the same `step` the runtime
//! calls, followed by every state and step invariant. A violated invariant is recorded in the
//! model state (and exploration stops there), so each invariant is its own `always` property
//! with a readable counterexample. Every state kind of the machine is a `sometimes` property,
//! so none of the `always` properties can hold because nothing was reachable.

use std::fmt::Debug;
use std::hash::Hash;

use arqon_core::machine::{Explore, Machine, checked_step};
use stateright::{Model, Property};

use crate::leak;

/// A machine as a stateright model.
#[derive(Clone, Debug)]
pub struct MachineModel<M> {
    /// The machine.
    pub machine: M,
}

/// A state of [`MachineModel`]: the machine's state and, once one broke, the broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Explored<S> {
    /// The machine's state.
    pub state: S,
    /// The invariant a step broke (`name`, detail), if any.
    pub violation: Option<(&'static str, String)>,
}

/// A machine the checker can run on its threads.
pub trait Checkable:
    Explore<State: Send + Sync, Event: Send + Sync> + Clone + Debug + Send + Sync + 'static
{
}

impl<M> Checkable for M where
    M: Explore<State: Send + Sync, Event: Send + Sync> + Clone + Debug + Send + Sync + 'static
{
}

/// The property name for the table check done by `checked_step`.
pub const IN_TABLE: &str = "transition-in-table";

impl<M> MachineModel<M>
where
    M: Checkable,
{
    /// Wraps `machine`.
    pub fn new(machine: M) -> Self {
        Self { machine }
    }
}

/// Whether invariant number `I` of the machine still holds.
fn invariant_holds<M: Explore, const I: usize>(
    _: &MachineModel<M>,
    s: &Explored<M::State>,
) -> bool {
    let name = M::invariants().get(I).map(|(name, _)| *name);
    s.violation.as_ref().is_none_or(|(v, _)| Some(*v) != name)
}

/// Whether the table check still holds.
fn in_table<M: Explore>(_: &MachineModel<M>, s: &Explored<M::State>) -> bool {
    s.violation.as_ref().is_none_or(|(v, _)| *v != IN_TABLE)
}

/// Whether the state is of kind number `I`.
fn reaches_kind<M: Explore, const I: usize>(_: &MachineModel<M>, s: &Explored<M::State>) -> bool {
    M::state_kinds().get(I) == Some(&M::state_kind(&s.state))
}

macro_rules! indexed {
    ($f:ident, $($i:literal),*) => {
        [$($f::<M, $i> as fn(&MachineModel<M>, &Explored<M::State>) -> bool),*]
    };
}

impl<M> Model for MachineModel<M>
where
    M: Checkable,
{
    type State = Explored<M::State>;
    type Action = M::Event;

    fn init_states(&self) -> Vec<Self::State> {
        vec![Explored {
            state: self.machine.initial(),
            violation: None,
        }]
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        if state.violation.is_none() {
            actions.extend(self.machine.alphabet(&state.state));
        }
    }

    fn next_state(&self, last: &Self::State, event: Self::Action) -> Option<Self::State> {
        match checked_step(&self.machine, &last.state, &event) {
            Ok(Some(step)) => Some(Explored {
                state: step.state,
                violation: None,
            }),
            Ok(None) => None,
            Err(violation) => Some(Explored {
                state: last.state.clone(),
                violation: Some((violation.name, violation.detail)),
            }),
        }
    }

    fn format_action(&self, event: &Self::Action) -> String {
        format!("{}: {event:?}", M::event_kind(event))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let invariants = indexed!(invariant_holds, 0, 1, 2, 3, 4, 5, 6, 7);
        let kinds = indexed!(reaches_kind, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
        let mut properties = vec![Property::always(IN_TABLE, in_table::<M>)];
        properties.extend(
            M::invariants()
                .iter()
                .zip(invariants)
                .map(|((name, _), holds)| Property::always(name, holds)),
        );
        properties.extend(
            M::state_kinds().iter().zip(kinds).map(|(kind, reaches)| {
                Property::sometimes(leak(format!("reaches {kind}")), reaches)
            }),
        );
        properties
    }
}

/// Describes a state for a trace: its kind, and the violation if there is one.
pub fn describe<M: Machine>(state: &Explored<M::State>) -> String {
    match &state.violation {
        Some((name, detail)) => format!("VIOLATED {name}: {detail}"),
        None => format!("{} {:?}", M::state_kind(&state.state), state.state),
    }
}
