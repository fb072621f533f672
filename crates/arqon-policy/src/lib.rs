//! Wasm policy chain host: compiles, checks and runs tenant safety policies, failing closed.
