//! Repository automation entry point (`cargo xtask`).

mod ci;
mod generate;
mod sim;
mod tidy;
mod transitions;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "ArqonBus repository automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ACES stages (specs/aces.md) and judge their facts with the Rego policies in policy/.
    Ci(ci::CiArgs),
    /// Render `state_machines/<machine>.{md,json}` from the arqon-core definitions (`--check`: fail on drift).
    Gen(generate::GenArgs),
    /// Check the code's shape: no module import cycle in a crate, a `//!` line on every module,
    /// files under the size limit, no unwrap/expect outside tests.
    Tidy(tidy::TidyArgs),
    /// Run the seeded cluster simulation over a time-boxed batch of seeds, or replay one seed.
    Sim(sim::SimArgs),
    /// Print the transition coverage of every arqon-core machine (fails when a row never fires).
    Transitions,
    /// Run every stateright model and write `target/verify/report.{md,json}`.
    Verify(verify::VerifyArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let passed = match &cli.command {
        Command::Ci(args) => ci::run(args)?,
        Command::Gen(args) => generate::run(args)?,
        Command::Sim(args) => sim::run(args)?,
        Command::Tidy(args) => tidy::run(args)?,
        Command::Transitions => transitions::run(),
        Command::Verify(args) => verify::run(args)?,
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
