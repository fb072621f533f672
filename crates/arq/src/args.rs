//! Choices and value parsers several commands share: the colour choice and durations.

use std::time::Duration;

use clap::ValueEnum;

/// When to colour output (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    pub(crate) fn clap(self) -> clap::ColorChoice {
        match self {
            Self::Auto => clap::ColorChoice::Auto,
            Self::Always => clap::ColorChoice::Always,
            Self::Never => clap::ColorChoice::Never,
        }
    }
}

/// Parses `500ms`, `2s`, `1m` with the config's duration grammar.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: arqon_config::Duration = text.parse().map_err(|error| format!("{error}"))?;
    Ok(parsed.get())
}
