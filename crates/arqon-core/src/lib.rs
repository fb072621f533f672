//! Sans-IO core of `ArqonBus`: the Session, Presence and Rollout state machines and every decision, with no I/O and no clock.

pub mod audit;
pub mod governance;
pub mod history;
pub mod lease;
pub mod limits;
pub mod machine;
pub mod presence;
pub mod rollout;
pub mod sampling;
pub mod session;
pub mod subject;
