//! Example `ArqonBus` policies written with `arqon-policy-sdk`: bad-words and payload-size.
//!
//! The judging functions live here so they can be tested on the host; `examples/*.rs` turn each
//! into a policy module (`cargo build -p arqon-policy-examples --examples --release --target
//! wasm32-unknown-unknown` writes `target/wasm32-unknown-unknown/release/examples/<name>.wasm`).

/// Seed 003 US3: blocks payloads that contain "malware" or "virus", ignoring ASCII case.
pub mod bad_words {
    use arqon_policy_sdk::{Decision, Message};

    /// The forbidden words, lower case.
    pub const WORDS: [&str; 2] = ["malware", "virus"];

    /// Blocks a payload containing any of [`WORDS`] (ASCII case-insensitive).
    pub fn judge(message: &Message<'_>) -> Decision {
        WORDS
            .iter()
            .find(|word| contains_ignore_ascii_case(message.payload, word.as_bytes()))
            .map_or(Decision::Allow, |word| {
                Decision::block(format!("bad word: {word}"))
            })
    }

    fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
    }
}

/// Blocks payloads larger than a fixed limit.
pub mod payload_size {
    use arqon_policy_sdk::{Decision, Message};

    /// The largest payload allowed, in bytes.
    pub const LIMIT: usize = 4096;

    /// Blocks a payload longer than [`LIMIT`].
    pub fn judge(message: &Message<'_>) -> Decision {
        if message.payload.len() > LIMIT {
            Decision::block("payload too large")
        } else {
            Decision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use arqon_policy_sdk::abi::Input;
    use arqon_policy_sdk::{Decision, rt};

    fn judge(judge: arqon_policy_sdk::Judge, payload: &[u8]) -> Decision {
        let input = Input {
            tenant: "acme",
            room: "lobby",
            sender: "alice",
            headers: &[],
            payload,
        };
        rt::judge_bytes(&input.encode().unwrap(), judge)
    }

    #[test]
    fn bad_words_blocks_malware_and_virus_in_any_case_and_allows_clean() {
        let bad = super::bad_words::judge;
        assert_eq!(
            judge(bad, b"some MalWare here"),
            Decision::block("bad word: malware")
        );
        assert_eq!(judge(bad, b"a virus"), Decision::block("bad word: virus"));
        assert_eq!(judge(bad, b"hello world"), Decision::Allow);
        assert_eq!(judge(bad, b""), Decision::Allow);
    }

    #[test]
    fn payload_size_blocks_above_the_limit_only() {
        let size = super::payload_size::judge;
        let limit = super::payload_size::LIMIT;
        assert_eq!(judge(size, &vec![b'a'; limit]), Decision::Allow);
        assert_eq!(
            judge(size, &vec![b'a'; limit + 1]),
            Decision::block("payload too large")
        );
    }
}
