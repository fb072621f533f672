//! The arqon-brain integration tests: one binary, one module per area.

mod audit_file;
mod audit_jetstream;
