//! The bad-words policy module (blocks "malware" and "virus"), built as a wasm32 cdylib.

arqon_policy_sdk::export_policy!(arqon_policy_examples::bad_words::judge);
