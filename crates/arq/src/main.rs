//! The arq CLI entry point: run a node, mint dev tokens and keys, check configuration.

// Doc comments on the clap types are the `--help` text, read by people, not rustdoc.
#![allow(clippy::doc_markdown)]

mod admin_http;
mod args;
mod cmd_auth;
mod cmd_config;
mod cmd_dev;
mod cmd_gov;
mod cmd_history;
mod cmd_policy;
mod cmd_serve;
mod cmd_status;
mod http_get;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::args::Color;

/// mimalloc's per-thread free lists make the message path's many small, short-lived allocations
/// cheaper than glibc's malloc: 25 % more deliveries per second in `arqon-bench` (`BENCHMARKS.md`).
/// It does not lower idle memory (that measured 15.4 → 17.7 KiB per connection on its own).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// arq: run and operate ArqonBus, the multi-tenant real-time message bus.
#[derive(Debug, Parser)]
#[command(
    name = "arq",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Quick start:\n  arq serve --dev                               run a single dev node on 127.0.0.1:8080\n  arq auth gen --tenant acme --sub alice        print a dev token for it\n  arq config check deploy/arqon.example.toml    validate a config file"
)]
struct Cli {
    /// When to use colour: auto (only on a terminal, and not with NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an ArqonBus node (Shield + Spine) until SIGTERM or Ctrl-C.
    Serve(cmd_serve::ServeArgs),
    /// Dev keys and dev tokens.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Check arqon.toml files and export their JSON Schema.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Governance: proposals, approvals, enforcement and the audit trail (admin API).
    Gov(cmd_gov::GovArgs),
    /// Wasm policy chains: deploy a module (hot reload) and list what is in force (admin API).
    Policy(cmd_policy::PolicyArgs),
    /// A room's newest messages from its history (admin API).
    History(cmd_history::HistoryArgs),
    /// Local dev stack: NATS (or the embedded spine), nodes and Prometheus in the background.
    #[command(subcommand)]
    Dev(cmd_dev::DevCommand),
    /// Health of NATS, every node and the Brain: connections, rooms, message rates (exit 1 if unhealthy).
    Status(cmd_status::StatusArgs),
    /// Print a shell completion script (e.g. `arq completions bash > /etc/bash_completion.d/arq`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print a dev RS256 token signed with the dev key (generated on first use).
    Gen(cmd_auth::GenArgs),
    /// Manage signing key pairs.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate an RSA 2048 key pair: private.pem (0600) and jwks.json.
    Gen {
        /// Directory to write the key pair into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite an existing key pair.
        #[arg(long, action = ArgAction::SetTrue)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file; print every problem with its file, line, key and reason.
    Check {
        /// The arqon.toml file.
        file: PathBuf,
    },
    /// Print the JSON Schema of arqon.toml (for editors).
    Schema,
}

/// The `--color` value, read before clap renders anything (help and errors are coloured too).
fn color_from_args() -> Color {
    let args: Vec<String> = std::env::args().collect();
    let mut value = None;
    for (index, arg) in args.iter().enumerate() {
        if let Some(rest) = arg.strip_prefix("--color=") {
            value = Some(rest.to_owned());
        } else if arg == "--color" {
            value = args.get(index + 1).cloned();
        }
    }
    value
        .and_then(|text| Color::from_str(&text, true).ok())
        .unwrap_or(Color::Auto)
}

fn main() -> ExitCode {
    let color = color_from_args();
    let matches = Cli::command().color(color.clap()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(&args, cli.color),
        Command::Auth(AuthCommand::Gen(args)) => cmd_auth::gen_token(&args),
        Command::Auth(AuthCommand::Keys(KeysCommand::Gen { out, force })) => {
            cmd_auth::gen_keys(&out, force)
        }
        Command::Config(ConfigCommand::Check { file }) => cmd_config::check(&file),
        Command::Config(ConfigCommand::Schema) => cmd_config::schema(),
        Command::Gov(args) => cmd_gov::run(&args),
        Command::Policy(args) => cmd_policy::run(&args),
        Command::History(args) => cmd_history::run(&args),
        Command::Dev(command) => cmd_dev::run(&command),
        Command::Status(args) => cmd_status::run(&args, cli.color),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "arq", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
