//! The payload-size policy module (blocks payloads over 4096 bytes), built as a wasm32 cdylib.

arqon_policy_sdk::export_policy!(arqon_policy_examples::payload_size::judge);
