//! `arq history ROOM --tenant T --last N`: a room's newest messages, read through a node's admin
//! API (`/admin/v1/tenants/<t>/rooms/<room>/history`, `specs/history.md`).
//!
//! The token is `--token` (or `ARQ_TOKEN`), or else a dev token minted from the dev keys with
//! role `operator` for `--tenant`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use arqon_auth::{DEFAULT_DEV_KEYS_DIR, Role};
use arqon_proto::names::{RoomName, TenantId};
use serde_json::Value;

/// `arq history` options.
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The room.
    #[arg(value_parser = RoomName::parse)]
    room: RoomName,
    /// The node's base URL (admin API enabled).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The tenant.
    #[arg(long, default_value = "dev", value_parser = TenantId::parse)]
    tenant: TenantId,
    /// How many of the newest messages (1..=1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    last: u32,
    /// Print the admin API's JSON instead of one line per message.
    #[arg(long)]
    json: bool,
    /// Bearer token with role admin or operator [default: $ARQ_TOKEN, else a dev token].
    #[arg(long)]
    token: Option<String>,
    /// Dev keys directory to mint the operator token from when no token is given.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DEV_KEYS_DIR)]
    keys: PathBuf,
}

/// Runs `arq history`.
pub(crate) fn run(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let token = match args
        .token
        .clone()
        .or_else(|| std::env::var("ARQ_TOKEN").ok())
    {
        Some(token) => token,
        None => crate::cmd_auth::admin_dev_token(
            &args.keys,
            &args.tenant,
            "arq-operator",
            Role::Operator,
        )?,
    };
    let path = format!(
        "/admin/v1/tenants/{}/rooms/{}/history?last={}",
        args.tenant.as_str(),
        args.room.as_str(),
        args.last
    );
    let (status, body) = crate::admin_http::call(&args.url, &token, "GET", &path, None)?;
    if status != 200 {
        let why = body["error"].as_str().unwrap_or("no reason given");
        bail!("history read refused (HTTP {status}): {why}");
    }
    if args.json {
        println!("{body:#}");
        return Ok(ExitCode::SUCCESS);
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    println!(
        "{} messages of {}/{} (epoch {}, position {})",
        messages.len(),
        args.tenant.as_str(),
        args.room.as_str(),
        body["epoch"].as_str().unwrap_or("-"),
        body["position"]
    );
    for message in &messages {
        println!("{}", line(message));
    }
    Ok(ExitCode::SUCCESS)
}

/// One message as a line: offset, sender, then the text or the payload size.
fn line(message: &Value) -> String {
    let text = match message["text"].as_str() {
        Some(text) => text.to_owned(),
        None => format!(
            "<{} bytes of {}>",
            message["payload_base64"]
                .as_str()
                .map_or(0, |b| b.len() * 3 / 4),
            message["content_type"].as_str().unwrap_or("?")
        ),
    };
    format!(
        "{:>10}  {:<16}  {text}",
        message["offset"],
        message["sender"].as_str().unwrap_or("-")
    )
}
