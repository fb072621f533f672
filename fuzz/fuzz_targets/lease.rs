//! Fuzzes the Lease machine: arbitrary event sequences from its alphabet, every invariant checked after every step.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|picks: &[u8]| {
    let machine = arqon_core::lease::Lease::default();
    // The same harness as the property tests (arqon_core::machine::drive): a violated
    // invariant is a crash with the step and the invariant's name.
    if let Err((at, violation)) = arqon_core::machine::drive(&machine, picks) {
        panic!("step {at}: {violation}");
    }
});
