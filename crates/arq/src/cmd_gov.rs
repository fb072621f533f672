//! `arq gov …`: governance operations through a node's admin API (`/admin/v1/tenants/<t>/governance`).
//!
//! The token is `--token` (or `ARQ_TOKEN`), or else a dev token minted from the dev keys with
//! role `operator` for `--tenant`. Plain `http://` only (the admin API is for loopback or a
//! private network; put TLS in front of it otherwise).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use arqon_auth::{DEFAULT_DEV_KEYS_DIR, Role};
use arqon_proto::names::TenantId;
use serde_json::{Value, json};

/// Options every `arq gov` command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct GovArgs {
    /// The node's base URL (admin API enabled).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The tenant.
    #[arg(long, global = true, default_value = "dev", value_parser = TenantId::parse)]
    tenant: TenantId,
    /// Bearer token with role admin or operator [default: $ARQ_TOKEN, else a dev token].
    #[arg(long, global = true)]
    token: Option<String>,
    /// Dev keys directory to mint the operator token from when no token is given.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_DEV_KEYS_DIR)]
    keys: PathBuf,
    #[command(subcommand)]
    command: GovCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GovCommand {
    /// List pending proposals, rollouts in flight, paused state and catalog version.
    Proposals,
    /// Approve a pending proposal, optionally with a ramp.
    Approve {
        /// The proposal id.
        id: String,
        /// Start at this percentage.
        #[arg(long)]
        initial: Option<f64>,
        /// Percentage points added per minute.
        #[arg(long)]
        step: Option<f64>,
        /// Never above this percentage.
        #[arg(long)]
        max: Option<f64>,
        /// The proposal digest you reviewed (refused if the stored proposal differs).
        #[arg(long)]
        digest: Option<String>,
    },
    /// Reject a pending proposal.
    Reject {
        /// The proposal id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send an enforcement to every data plane of the tenant.
    #[command(subcommand)]
    Enforce(EnforceCommand),
    /// List the tenant's audit trail; with --verify, check its hash chain.
    Audit {
        /// Verify the chain; exits non-zero naming the first bad record.
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum EnforceCommand {
    /// Back to the safe baseline everywhere, and pause adaptation.
    EmergencyStop,
    /// Freeze adaptation.
    Pause,
    /// Unfreeze adaptation.
    Resume,
    /// Force a variant.
    SetVariant {
        /// The variant id.
        variant: u64,
    },
    /// Force parameters (`name=value`, repeatable).
    SetParams {
        /// `name=value` pairs.
        #[arg(required = true, value_parser = parse_param)]
        params: Vec<(String, f64)>,
    },
}

fn parse_param(text: &str) -> Result<(String, f64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not name=value"))?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    Ok((name.to_owned(), value))
}

/// Runs `arq gov …`.
pub(crate) fn run(args: &GovArgs) -> anyhow::Result<ExitCode> {
    let token = match args
        .token
        .clone()
        .or_else(|| std::env::var("ARQ_TOKEN").ok())
    {
        Some(token) => token,
        None => dev_token(args)?,
    };
    let base = format!("/admin/v1/tenants/{}/governance", args.tenant.as_str());
    let admin = Admin {
        url: &args.url,
        token: &token,
    };
    match &args.command {
        GovCommand::Proposals => {
            let (status, body) = admin.call("GET", &base, None)?;
            ensure_ok(status, &body)?;
            print_state(&body);
        }
        GovCommand::Approve {
            id,
            initial,
            step,
            max,
            digest,
        } => {
            let mut request = json!({});
            for (key, value) in [
                ("initial_percent", initial),
                ("increment_per_minute", step),
                ("max_percent", max),
            ] {
                if let Some(value) = value {
                    request[key] = json!(value);
                }
            }
            if let Some(digest) = digest {
                request["digest"] = json!(digest);
            }
            let path = format!("{base}/proposals/{}/approve", path_segment(id)?);
            let (status, body) = admin.call("POST", &path, Some(&request))?;
            ensure_ok(status, &body)?;
            println!("approved {id}");
        }
        GovCommand::Reject { id, reason } => {
            let request = json!({ "reason": reason.clone().unwrap_or_default() });
            let path = format!("{base}/proposals/{}/reject", path_segment(id)?);
            let (status, body) = admin.call("POST", &path, Some(&request))?;
            ensure_ok(status, &body)?;
            println!("rejected {id}");
        }
        GovCommand::Enforce(action) => {
            let request = match action {
                EnforceCommand::EmergencyStop => json!({ "action": "emergency-stop" }),
                EnforceCommand::Pause => json!({ "action": "pause" }),
                EnforceCommand::Resume => json!({ "action": "resume" }),
                EnforceCommand::SetVariant { variant } => {
                    json!({ "action": "set-variant", "variant_id": variant })
                }
                EnforceCommand::SetParams { .. } => json!({ "action": "set-params" }),
            };
            let request = fix_params(request, action);
            let (status, body) = admin.call("POST", &format!("{base}/enforce"), Some(&request))?;
            ensure_ok(status, &body)?;
            println!(
                "enforced {} on tenant {}",
                request["action"].as_str().unwrap_or_default(),
                args.tenant.as_str()
            );
        }
        GovCommand::Audit { verify: false } => list_audit(&admin, &base)?,
        GovCommand::Audit { verify: true } => return verify_audit(&admin, &base, &args.tenant),
    }
    Ok(ExitCode::SUCCESS)
}

fn list_audit(admin: &Admin<'_>, base: &str) -> anyhow::Result<()> {
    let (status, body) = admin.call("GET", &format!("{base}/audit"), None)?;
    ensure_ok(status, &body)?;
    for record in body["records"].as_array().into_iter().flatten() {
        let r = &record["record"];
        println!(
            "{:>6} {} {:<12} {:<10} {:<14} {} {}",
            record["seq"],
            r["at_us"],
            text(&r["kind"]),
            text(&r["outcome"]),
            text(&r["role"]),
            text(&r["actor"]),
            text(&r["subject"]),
        );
    }
    Ok(())
}

/// Exit 0 when the chain verifies, 2 naming the first bad record when it does not.
fn verify_audit(admin: &Admin<'_>, base: &str, tenant: &TenantId) -> anyhow::Result<ExitCode> {
    let (status, body) = admin.call("GET", &format!("{base}/audit/verify"), None)?;
    if status == 409 {
        eprintln!(
            "audit chain of tenant {} is broken: first bad record seq {}: {}",
            tenant.as_str(),
            body["first_bad_seq"],
            text(&body["reason"])
        );
        return Ok(ExitCode::from(2));
    }
    ensure_ok(status, &body)?;
    println!(
        "audit chain of tenant {} verifies: {} records",
        tenant.as_str(),
        body["records"]
    );
    Ok(ExitCode::SUCCESS)
}

/// The `params` of a set-params request as a JSON object of numbers.
fn fix_params(mut request: Value, action: &EnforceCommand) -> Value {
    if let EnforceCommand::SetParams { params } = action {
        let map: serde_json::Map<String, Value> = params
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        request["params"] = Value::Object(map);
    }
    request
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn path_segment(id: &str) -> anyhow::Result<&str> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        bail!("proposal id {id:?} must be [A-Za-z0-9._~-]+");
    }
    Ok(id)
}

fn print_state(body: &Value) {
    println!(
        "tenant {}  paused: {}  catalog version: {}",
        text(&body["tenant"]),
        body["paused"],
        body["catalog_version"]
    );
    let pending = body["pending"].as_array().cloned().unwrap_or_default();
    println!("pending proposals: {}", pending.len());
    for p in &pending {
        println!(
            "  {}  from {}  variant {}  confidence {}  digest {}  reason {:?}",
            text(&p["id"]),
            text(&p["from"]),
            p["variant_id"],
            p["confidence"],
            text(&p["digest"]),
            text(&p["reason"]),
        );
    }
    let rollouts = body["rollouts"].as_array().cloned().unwrap_or_default();
    println!("rollouts in flight: {}", rollouts.len());
    for r in &rollouts {
        println!(
            "  {}  {}  {} bp",
            text(&r["proposal_id"]),
            text(&r["phase"]),
            r["percent_bp"]
        );
    }
}

fn ensure_ok(status: u16, body: &Value) -> anyhow::Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = body["refusals"]
        .as_array()
        .and_then(|r| r.first())
        .map(|r| format!("{}: {}", text(&r["code"]), text(&r["message"])))
        .or_else(|| body["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_string());
    bail!("admin API answered {status}: {reason}")
}

fn dev_token(args: &GovArgs) -> anyhow::Result<String> {
    crate::cmd_auth::admin_dev_token(&args.keys, &args.tenant, "arq-operator", Role::Operator)
}

/// A minimal HTTP/1.1 client for the admin API (one request per connection).
struct Admin<'a> {
    url: &'a str,
    token: &'a str,
}

impl Admin<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let payload = body.map(Value::to_string);
        let body = payload
            .as_deref()
            .map(|json| ("application/json", json.as_bytes()));
        crate::admin_http::call(self.url, self.token, method, path, body)
    }
}
