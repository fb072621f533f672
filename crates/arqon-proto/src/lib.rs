//! ArqonBus wire contract: Protobuf types, trust-boundary validation and golden vectors.

pub mod names;
