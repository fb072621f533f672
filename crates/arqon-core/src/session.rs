//! The Session machine: one client connection from upgrade to close, as a pure step function.
//!
//! `specs/session.md`. States `connecting → authenticating → active → draining → closed`. The Shield
//! steps it with every socket event and executes the effects; it never decides anything itself.
//! Time is the `now_us` field of events (µs since the Unix epoch).

pub mod explore;
mod table;
mod transitions;
mod types;

pub use types::{
    CloseReason, ErrorCode, Identity, Live, PolicyVerdict, RefreshOutcome, SessionConfig,
    SessionEffect, SessionEvent, SessionLimits, SessionMachine, SessionRejection, SessionState,
    Stamp,
};

#[cfg(test)]
mod tests;
