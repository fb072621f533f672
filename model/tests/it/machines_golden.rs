//! Golden traces (`golden/traces/`): canonical event sequences with their states and effects.
//!
//! Per machine, the shortest sequence that fires each transition row is replayed and
//! snapshotted, plus hand-picked scenarios from the specs. A drift fails under `CI=true`.

use std::fmt::Write as _;

use arqon_core::lease::Lease;
use arqon_core::machine::{Explore, Machine};
use arqon_core::presence::Presence;
use arqon_core::rollout::{MINUTE_US, Rollout, RolloutEvent};
use arqon_model::coverage::{explore, render_trace};
use arqon_model::replicas::script;
use arqon_model::suite::session_machine;

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../../../golden/traces",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// One trace per transition row: the shortest sequence that fires it.
fn per_row<M: Explore>(machine: &M, depth: usize) -> String {
    let coverage = explore(machine, depth);
    let mut out = String::new();
    for (row, path) in M::transitions().iter().zip(&coverage.rows) {
        let _ = writeln!(out, "## {} --{}--> {}", row.from, row.event, row.to);
        match path {
            Some(events) => out.push_str(&render_trace(machine, events)),
            None => out.push_str("never fired\n"),
        }
        out.push('\n');
    }
    out
}

#[test]
fn rollout_rows() {
    snapshot("rollout_rows", &per_row(&Rollout, 10));
}

#[test]
fn lease_rows() {
    snapshot("lease_rows", &per_row(&Lease::default(), 8));
}

#[test]
fn presence_rows() {
    snapshot("presence_rows", &per_row(&Presence::default(), 5));
}

#[test]
fn session_rows() {
    snapshot("session_rows", &per_row(&session_machine(), 7));
}

// AC-ROLLOUT-2
#[test]
fn rollout_ramp_to_completion_then_emergency_stop() {
    // The replicas model's proposal and approval, then a ramp minute by minute.
    let mut events: Vec<RolloutEvent> = script().into_iter().take(2).collect();
    events.extend((0..6).map(|m| RolloutEvent::Step {
        now_us: m * MINUTE_US,
    }));
    events.push(RolloutEvent::EmergencyStop);
    snapshot("rollout_ramp", &render_trace(&Rollout, &events));
}

#[test]
fn presence_alphabet_walk() {
    // A fixed walk by alphabet index: a join, remote messages, a refused request, ticks, a leave.
    let machine = Presence::default();
    let mut state = machine.initial();
    let mut events = Vec::new();
    for pick in [0, 5, 8, 13, 4, 1, 4, 4] {
        let alphabet = machine.alphabet(&state);
        let event = alphabet[pick % alphabet.len()].clone();
        if let Ok(step) = machine.step(&state, &event) {
            state = step.state;
        }
        events.push(event);
    }
    snapshot("presence_walk", &render_trace(&machine, &events));
}
