//! `arq policy deploy` and `arq policy list`: hot-reload Wasm policy chains through a node's admin
//! API (`POST /admin/v1/policies/{global | tenant/<t>}`, `GET /admin/v1/policies`).
//!
//! The token is `--token` (or `ARQ_TOKEN`), or else a dev token with role `admin` for `--tenant`
//! (default `dev`) minted from the dev keys. Plain `http://` only (the admin API is for loopback or
//! a private network; put TLS in front of it otherwise).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use arqon_auth::{DEFAULT_DEV_KEYS_DIR, Role};
use arqon_proto::names::TenantId;
use serde_json::Value;

/// Options every `arq policy` command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyArgs {
    /// The node's base URL (admin API enabled).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token with role admin [default: $ARQ_TOKEN, else a dev admin token for --tenant].
    #[arg(long, global = true)]
    token: Option<String>,
    /// Dev keys directory to mint the admin token from when no token is given.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_DEV_KEYS_DIR)]
    keys: PathBuf,
    /// Print the admin API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Compile, check and self-test a module (.wasm or .wat) on the node, then make it the chain of
    /// a tenant (or the global chain) in one atomic swap. A refused module changes nothing (exit 2).
    Deploy {
        /// The module file.
        file: PathBuf,
        /// Deploy as this tenant's chain.
        #[arg(long, value_parser = TenantId::parse, required_unless_present = "global")]
        tenant: Option<TenantId>,
        /// Deploy as the global chain (runs for every tenant, first).
        #[arg(long, conflicts_with = "tenant")]
        global: bool,
        /// The module's name in listings [default: the file name].
        #[arg(long)]
        name: Option<String>,
    },
    /// Show the chains in force (global, and the token's tenant) with each module's SHA-256.
    List {
        /// The tenant whose dev admin token is minted (ignored with --token).
        #[arg(long, value_parser = TenantId::parse, default_value = "dev")]
        tenant: TenantId,
    },
}

/// Runs `arq policy …`.
pub(crate) fn run(args: &PolicyArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PolicyCommand::Deploy {
            file,
            tenant,
            global,
            name,
        } => {
            let scope = match (tenant, global) {
                (Some(tenant), false) => format!("tenant/{}", tenant.as_str()),
                (None, true) => "global".to_owned(),
                _ => bail!("give exactly one of --tenant <t> and --global"),
            };
            let dev_tenant = tenant.clone().map_or_else(|| TenantId::parse("dev"), Ok)?;
            let token = token(args, &dev_tenant)?;
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = name.clone().unwrap_or_else(|| file_name(file));
            let path = format!("/admin/v1/policies/{scope}?name={}", percent_encode(&name));
            let (status, body) = call(&args.url, &token, "POST", &path, &bytes)?;
            deployed(args.json, status, &body)
        }
        PolicyCommand::List { tenant } => {
            let token = token(args, tenant)?;
            let (status, body) = call(&args.url, &token, "GET", "/admin/v1/policies", &[])?;
            ensure_ok(status, &body)?;
            if args.json {
                println!("{body}");
            } else {
                print!("{}", table(&body));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reports a deploy's answer: 0 when in force, 2 when the module was refused.
fn deployed(json: bool, status: u16, body: &Value) -> anyhow::Result<ExitCode> {
    if status == 422 {
        if json {
            println!("{body}");
        }
        eprintln!(
            "refused: {} ({}); the chain in force is unchanged",
            text(&body["code"]),
            text(&body["error"])
        );
        return Ok(ExitCode::from(2));
    }
    ensure_ok(status, body)?;
    if json {
        println!("{body}");
    } else {
        for module in body["modules"].as_array().into_iter().flatten() {
            println!(
                "deployed {} to {}  sha256 {}",
                text(&module["name"]),
                text(&body["scope"]),
                text(&module["sha256"])
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The human table of `arq policy list`: one row per module (a row with `-` for an empty chain).
fn table(body: &Value) -> String {
    let mut out = format!(
        "{:<24} {:>4}  {:<32} {:<64}  STATUS\n",
        "SCOPE", "GEN", "MODULE", "SHA-256"
    );
    for chain in body["chains"].as_array().into_iter().flatten() {
        let scope = text(&chain["scope"]);
        let generation = &chain["generation"];
        let modules = chain["modules"].as_array().cloned().unwrap_or_default();
        if modules.is_empty() {
            let _ = writeln!(
                out,
                "{scope:<24} {generation:>4}  {:<32} {:<64}  -",
                "-", "-"
            );
        }
        for module in &modules {
            let status = module["failing_with"]
                .as_str()
                .map_or_else(|| "loaded".to_owned(), |code| format!("blocks all: {code}"));
            let _ = writeln!(
                out,
                "{scope:<24} {generation:>4}  {:<32} {:<64}  {status}",
                text(&module["name"]),
                text(&module["sha256"]),
            );
        }
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `%XX`-encodes every byte outside the URL's unreserved set.
fn percent_encode(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn ensure_ok(status: u16, body: &Value) -> anyhow::Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = body["error"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    bail!("admin API answered {status}: {reason}")
}

fn token(args: &PolicyArgs, tenant: &TenantId) -> anyhow::Result<String> {
    if let Some(token) = args
        .token
        .clone()
        .or_else(|| std::env::var("ARQ_TOKEN").ok())
    {
        return Ok(token);
    }
    crate::cmd_auth::admin_dev_token(&args.keys, tenant, "arq-admin", Role::Admin)
}

/// One request to the admin API with an octet-stream body (a module); the status and JSON body.
fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, Value)> {
    crate::admin_http::call(
        url,
        token,
        method,
        path,
        Some(("application/octet-stream", body)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_outside_the_unreserved_set() {
        assert_eq!(percent_encode("bad_words.wat"), "bad_words.wat");
        assert_eq!(percent_encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn the_table_shows_each_module_with_its_hash_and_empty_chains_as_a_dash() {
        let body = serde_json::json!({ "chains": [
            { "scope": "global", "generation": 0, "modules": [] },
            { "scope": "tenant/acme", "generation": 2, "modules": [
                { "name": "bad_words", "sha256": "ab".repeat(32), "failing_with": null },
                { "name": "broken", "sha256": "cd".repeat(32), "failing_with": "POLICY_LOAD" },
            ]},
        ]});
        let table = table(&body);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[1].starts_with("global") && lines[1].ends_with("  -"));
        assert!(lines[2].contains("bad_words") && lines[2].contains(&"ab".repeat(32)));
        assert!(lines[3].ends_with("blocks all: POLICY_LOAD"), "{table}");
    }
}
