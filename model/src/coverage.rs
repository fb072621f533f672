//! Transition coverage and canonical paths: breadth-first over a machine's exploration alphabet.
//!
//! For every row of `Machine::transitions()` it records the shortest event sequence that fires
//! it. Tests fail when a row never fires; the golden traces replay each row's sequence.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

use arqon_core::lease::Lease;
use arqon_core::machine::{Explore, InvariantViolation, Machine, checked_step, row_for};
use arqon_core::presence::Presence;
use arqon_core::rollout::Rollout;

use crate::suite::session_machine;

/// What a breadth-first exploration found.
#[derive(Debug)]
pub struct Coverage<M: Machine> {
    /// Per row of the table, in table order, the shortest sequence that fires it.
    pub rows: Vec<Option<Vec<M::Event>>>,
    /// Distinct states seen.
    pub states: usize,
    /// The first invariant violation, with the sequence that led to it.
    pub violation: Option<(Vec<M::Event>, InvariantViolation)>,
}

impl<M: Machine> Coverage<M> {
    /// How many rows fired.
    pub fn fired(&self) -> usize {
        self.rows.iter().filter(|r| r.is_some()).count()
    }

    /// The rows that never fired, as `from --event--> to`.
    pub fn missing(&self) -> Vec<String> {
        M::transitions()
            .iter()
            .zip(&self.rows)
            .filter(|(_, path)| path.is_none())
            .map(|(row, _)| format!("{} --{}--> {} [{}]", row.from, row.event, row.to, row.guard))
            .collect()
    }
}

/// Explores `machine` breadth-first, `depth` events deep.
pub fn explore<M: Explore>(machine: &M, depth: usize) -> Coverage<M> {
    let table = M::transitions();
    let mut coverage = Coverage {
        rows: vec![None; table.len()],
        states: 0,
        violation: None,
    };
    let initial = machine.initial();
    let mut seen = HashSet::from([initial.clone()]);
    let mut queue = VecDeque::from([(initial, Vec::new())]);
    while let Some((state, path)) = queue.pop_front() {
        for event in machine.alphabet(&state) {
            let mut next_path = path.clone();
            next_path.push(event.clone());
            let step = match checked_step(machine, &state, &event) {
                Ok(Some(step)) => step,
                Ok(None) => continue,
                Err(violation) => {
                    coverage.violation.get_or_insert((next_path, violation));
                    continue;
                }
            };
            if let Some(row) = row_for::<M>(&state, &event, &step.state)
                && let Some(index) = table.iter().position(|r| std::ptr::eq(r, row))
            {
                coverage.rows[index].get_or_insert_with(|| next_path.clone());
            }
            if next_path.len() < depth && seen.insert(step.state.clone()) {
                queue.push_back((step.state, next_path));
            }
        }
    }
    coverage.states = seen.len();
    coverage
}

/// One machine's transition coverage in numbers, for reports (`cargo xtask transitions`, ACES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub machine: &'static str,
    pub fired: usize,
    pub total: usize,
    pub states: usize,
    /// Rows that never fired, as `from --event--> to [guard]`.
    pub missing: Vec<String>,
    /// The first invariant violation seen, rendered.
    pub violation: Option<String>,
}

impl<M: Machine> Coverage<M> {
    /// The numbers of this exploration.
    pub fn summary(&self) -> Summary {
        Summary {
            machine: M::NAME,
            fired: self.fired(),
            total: M::transitions().len(),
            states: self.states,
            missing: self.missing(),
            violation: self
                .violation
                .as_ref()
                .map(|(path, violation)| format!("{violation:?} after {} events", path.len())),
        }
    }
}

/// Every machine of `arqon-core`, explored deep enough that every row of its table fires: the one
/// list the coverage tests and `cargo xtask transitions` share.
pub fn every_machine() -> Vec<Summary> {
    vec![
        explore(&Rollout, 10).summary(),
        explore(&Presence::default(), 5).summary(),
        explore(&session_machine(), 7).summary(),
        explore(&Lease::default(), 8).summary(),
    ]
}

/// Replays `events` from the initial state and renders each step: the event, then the
/// resulting state kind and effects (or the refusal), then the final state.
pub fn render_trace<M: Explore>(machine: &M, events: &[M::Event]) -> String {
    let mut state = machine.initial();
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        let _ = writeln!(out, "{}. {} {event:?}", i + 1, M::event_kind(event));
        match machine.step(&state, event) {
            Ok(step) => {
                let _ = writeln!(out, "   -> {}", M::state_kind(&step.state));
                for effect in &step.effects {
                    let _ = writeln!(out, "   ! {effect:?}");
                }
                state = step.state;
            }
            Err(rejection) => {
                let _ = writeln!(out, "   refused: {rejection}");
            }
        }
    }
    let _ = writeln!(out, "final: {state:#?}");
    out
}
