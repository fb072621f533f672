//! Rust client for ArqonBus: connect, rooms, presence and typed governance messages.
