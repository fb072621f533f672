//! Strict TOML configuration (arqon.toml) for an ArqonBus node, with its JSON Schema.
