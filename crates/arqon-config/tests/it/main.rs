//! Integration tests for arqon-config: errors naming key and line, examples, JSON Schema.

mod config_errors;
mod config_examples;
mod config_schema;
