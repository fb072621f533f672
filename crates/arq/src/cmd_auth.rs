//! `arq auth gen` (dev tokens) and `arq auth keys gen` (key pairs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use arqon_auth::{
    Claims, DEFAULT_DEV_KEYS_DIR, DEV_AUDIENCE, DEV_ISSUER, DevKeys, JWKS_FILE, PRIVATE_KEY_FILE,
    Role,
};
use arqon_config::{Config, JwksSource};
use arqon_proto::names::{TenantId, UserId};

/// Arguments of `arq auth gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenArgs {
    /// Tenant claim ([a-z0-9][a-z0-9_-]{0,63}).
    #[arg(long, default_value = "dev", value_parser = TenantId::parse)]
    tenant: TenantId,
    /// Subject (user id) claim.
    #[arg(long, default_value = "dev-user", value_parser = UserId::parse)]
    sub: UserId,
    /// Role claim: user, service, admin, or a governance role (agent, dataplane, tier1, operator).
    #[arg(long, default_value = "user", value_parser = parse_role)]
    role: Role,
    /// Lifetime, e.g. 30s, 15m, 1h.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: arqon_config::Duration,
    /// Dev keys directory (private.pem, jwks.json), generated on first use
    /// [default: auth.dev_keys_dir of --config, else .arqon/dev-keys].
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// Issuer claim [default: auth.issuer of --config, else arqon-dev].
    #[arg(long)]
    iss: Option<String>,
    /// Audience claim [default: auth.audience of --config, else arqon].
    #[arg(long)]
    aud: Option<String>,
    /// Take the keys directory, issuer and audience from this node config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The keys directory, issuer and audience a token is minted with.
fn mint_settings(args: &GenArgs) -> anyhow::Result<(PathBuf, String, String)> {
    let (dir, settings) = match &args.config {
        Some(path) => {
            let config = Config::load(path)?;
            if !matches!(config.jwks_source(), JwksSource::DevKeys(_)) {
                eprintln!(
                    "note: {} trusts its own JWKS, not the dev keys; a node running it refuses this token",
                    path.display()
                );
            }
            (
                config.auth.dev_keys_dir.clone(),
                Some(config.verifier_settings()),
            )
        }
        None => (PathBuf::from(DEFAULT_DEV_KEYS_DIR), None),
    };
    let issuer = settings.as_ref().map_or(DEV_ISSUER, |s| s.issuer.as_str());
    let audience = settings
        .as_ref()
        .map_or(DEV_AUDIENCE, |s| s.audience.as_str());
    Ok((
        args.keys.clone().unwrap_or(dir),
        args.iss.clone().unwrap_or_else(|| issuer.to_owned()),
        args.aud.clone().unwrap_or_else(|| audience.to_owned()),
    ))
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        format!("{text:?} is not one of {}", known.join(", "))
    })
}

fn parse_ttl(text: &str) -> Result<arqon_config::Duration, String> {
    let ttl: arqon_config::Duration = text.parse().map_err(|error| format!("{error}"))?;
    if ttl.as_secs() == 0 {
        return Err("ttl must be at least 1s".to_owned());
    }
    Ok(ttl)
}

/// A short-lived dev token for the admin commands (`arq gov`, `arq policy`) when no `--token` is
/// given: minted from the dev keys in `keys`, which must exist (they are never generated here).
pub(crate) fn admin_dev_token(
    keys: &Path,
    tenant: &TenantId,
    sub: &str,
    role: Role,
) -> anyhow::Result<String> {
    let keys = DevKeys::load(keys).with_context(|| {
        format!(
            "no --token and no dev keys in {} to mint one",
            keys.display()
        )
    })?;
    let claims = Claims::dev(tenant.clone(), UserId::parse(sub)?, role, unix_now()?, 300);
    Ok(keys.mint(&claims)?)
}

fn unix_now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs())
}

pub(crate) fn gen_token(args: &GenArgs) -> anyhow::Result<ExitCode> {
    let (dir, issuer, audience) = mint_settings(args)?;
    let (keys, generated) = DevKeys::load_or_generate(&dir)
        .with_context(|| format!("dev keys in {}", dir.display()))?;
    if generated {
        eprintln!(
            "generated dev keys in {} (kid {})",
            dir.display(),
            keys.kid()
        );
    }
    let mut claims = Claims::dev(
        args.tenant.clone(),
        args.sub.clone(),
        args.role,
        unix_now()?,
        args.ttl.as_secs(),
    );
    claims.iss = issuer;
    claims.aud = vec![audience];
    println!("{}", keys.mint(&claims)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn gen_keys(out: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key_path = out.join(PRIVATE_KEY_FILE);
    if key_path.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace the key pair",
            key_path.display()
        );
    }
    let keys = DevKeys::generate()?;
    keys.save(out)?;
    println!("private key: {}", key_path.display());
    println!("jwks:        {}", out.join(JWKS_FILE).display());
    println!("kid:         {}", keys.kid());
    Ok(ExitCode::SUCCESS)
}
