//! Strict TOML configuration (`arqon.toml`) for an `ArqonBus` node, with its JSON Schema.
//!
//! [`Config::load`] reads a file; [`Config::from_toml_str`] parses text. Every table refuses unknown
//! keys; durations (`"30s"`) and sizes (`"64KiB"`) are typed; range and combination checks run after
//! parsing. Every error names the file, the key path, the line and column, and the reason
//! ([`ConfigError`], [`Problem`]). Relative paths in the file are relative to the working directory.
//! See `specs/config.md`.

mod config;
mod locate;
mod sections;
mod units;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use config::Config;
pub use sections::{
    AdminConfig, AuditKind, AuthConfig, GovernanceConfig, HISTORY_MAX_AGE, HISTORY_MAX_BYTES,
    HISTORY_MAX_MESSAGES, HistoryConfig, LimitsConfig, LogFormat, NodeConfig, PolicyChain,
    PolicyConfig, PresenceConfig, Rate, RolloutDefaults, SessionConfig, SpineConfig, SpineKind,
    TelemetryConfig, TenantHistoryOverride, TenantLimits, TenantLimitsOverride, TlsConfig,
};
pub use units::{ByteSize, Duration, UnitError};

use locate::Locator;

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key path (`limits.tenants.acme.max_rooms`, `spine.nats_urls[1]`); empty for a syntax
    /// error outside any key.
    pub key: String,
    /// 1-based line of the key (or of its nearest parent table when the key is absent).
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration built in code could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(String),
    /// The text is not valid TOML, does not match the schema, or fails a range or combination check.
    #[error("{}", render(origin, problems))]
    Invalid {
        /// The file (or other origin) the text came from.
        origin: String,
        /// Every problem found, in document order when known.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems, when the text was read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } | Self::Serialize(_) => &[],
            Self::Invalid { problems, .. } => problems,
        }
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| problem.render(origin))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Problem {
    fn render(&self, origin: &str) -> String {
        let position = match (self.line, self.column) {
            (Some(line), Some(column)) => format!(":{line}:{column}"),
            (Some(line), None) => format!(":{line}"),
            _ => String::new(),
        };
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.key)
        };
        format!("{origin}{position}: {key}{}", self.reason)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("arqon.toml"))
    }
}

/// Where the verification keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file.
    File(PathBuf),
    /// Inline JWKS text.
    Inline(String),
    /// Dev mode without a JWKS: the dev key pair in this directory (generated on first use).
    DevKeys(PathBuf),
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks TOML text; `origin` names it in errors (usually the file path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let locator = Locator::new(text);
        let invalid = |problems| ConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        let config: Self = toml::from_str(text).map_err(|error| {
            let (key, line, column) = match error.span() {
                Some(span) => {
                    let (line, column) = locator.line_col(span.start);
                    (
                        locator.path_at(span.start).to_string(),
                        Some(line),
                        Some(column),
                    )
                }
                None => (String::new(), None, None),
            };
            invalid(vec![Problem {
                key,
                line,
                column,
                reason: error.message().trim().to_owned(),
            }])
        })?;
        let findings = validate::validate(&config);
        if findings.0.is_empty() {
            return Ok(config);
        }
        let mut problems: Vec<Problem> = findings
            .0
            .into_iter()
            .map(|finding| {
                let span = locator.span_of(&finding.key).or_else(|| {
                    finding
                        .anchor
                        .as_ref()
                        .and_then(|anchor| locator.span_of(anchor))
                });
                let position = span.map(|span| locator.line_col(span.start));
                Problem {
                    key: finding.key.to_string(),
                    line: position.map(|(line, _)| line),
                    column: position.map(|(_, column)| column),
                    reason: finding.reason,
                }
            })
            .collect();
        problems.sort_by_key(|problem| (problem.line.unwrap_or(usize::MAX), problem.column));
        Err(invalid(problems))
    }

    /// A single-node dev configuration: dev mode on loopback port 8080, embedded spine, dev keys in
    /// `.arqon/dev-keys`, pretty logs, admin API on.
    pub fn dev_default() -> Self {
        let mut config = Self::default();
        "dev".clone_into(&mut config.node.id);
        config.node.dev = true;
        config.node.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        config.telemetry.log_format = LogFormat::Pretty;
        config.admin.enabled = true;
        config
    }

    /// Runs the range and combination checks on a configuration built in code.
    pub fn check(&self) -> Result<(), ConfigError> {
        let text = self.to_toml()?;
        Self::from_toml_str(&text, "<config>").map(|_| ())
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|error| ConfigError::Serialize(error.to_string()))
    }

    /// The JSON Schema of `arqon.toml`, for editors.
    pub fn json_schema() -> serde_json::Value {
        schemars::schema_for!(Config).to_value()
    }

    /// Where verification keys come from: the JWKS file or inline JWKS, else (dev mode) the dev keys.
    pub fn jwks_source(&self) -> JwksSource {
        match (&self.auth.jwks_file, &self.auth.jwks) {
            (Some(path), _) => JwksSource::File(path.clone()),
            (None, Some(text)) => JwksSource::Inline(text.clone()),
            (None, None) => JwksSource::DevKeys(self.auth.dev_keys_dir.clone()),
        }
    }

    /// The issuer, audience and leeway tokens are judged against; in dev mode missing values are
    /// the dev issuer and audience.
    pub fn verifier_settings(&self) -> arqon_auth::VerifierSettings {
        arqon_auth::VerifierSettings {
            issuer: self
                .auth
                .issuer
                .clone()
                .unwrap_or_else(|| arqon_auth::DEV_ISSUER.to_owned()),
            audience: self
                .auth
                .audience
                .clone()
                .unwrap_or_else(|| arqon_auth::DEV_AUDIENCE.to_owned()),
            leeway_secs: self.auth.leeway.as_secs(),
        }
    }
}
