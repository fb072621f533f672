//! The JSON Schema export, pinned by a snapshot.

use arqon_config::Config;

// AC-CONFIG-9
#[test]
fn ac_config_9_json_schema_snapshot() {
    let schema = Config::json_schema();
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    insta::assert_json_snapshot!("arqon_toml_schema", schema);
}
