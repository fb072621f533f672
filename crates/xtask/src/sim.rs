//! `cargo xtask sim`: runs the seeded cluster simulation (`specs/simulation.md`) over a batch of
//! seeds, time-boxed, or replays one seed with its trace.
//!
//! `cargo xtask sim` runs seeds from `--from` until `--seeds` are done or `--seconds` have passed
//! (CI: 30 s); `--seed N --trace` replays one seed and prints every event; `--bug NAME` plants a
//! bug (to see it found). Exit 1 when a seed breaks an invariant (with the planted bug: when none
//! does).

use std::time::{Duration, Instant};

use anyhow::bail;
use arqon_model::sim::config::{Bug, SimConfig};
use arqon_model::sim::world::{run as run_seed, run_traced};

/// Options of `cargo xtask sim`.
#[derive(clap::Args, Debug)]
pub(crate) struct SimArgs {
    /// The first seed of the batch.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// How many seeds at most.
    #[arg(long, default_value_t = 1_000_000)]
    seeds: u64,
    /// Stop starting new seeds after this many seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Replay this one seed.
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: print every event.
    #[arg(long)]
    trace: bool,
    /// Plant a bug: lease-counts-from-answer or presence-forgets-leaves.
    #[arg(long, default_value = "none")]
    bug: String,
}

/// Runs the batch or the replay; returns whether the outcome is the expected one.
pub(crate) fn run(args: &SimArgs) -> anyhow::Result<bool> {
    let Some(bug) = Bug::parse(&args.bug) else {
        bail!("unknown bug {:?}", args.bug);
    };
    let config = SimConfig {
        bug,
        ..SimConfig::default()
    };
    if let Some(seed) = args.seed {
        let (report, trace) = run_traced(seed, &config);
        if args.trace {
            for line in &trace {
                println!("{line}");
            }
        }
        println!("seed {seed}: {:?}", report.stats);
        println!("digest {:016x}", report.digest);
        if let Some(v) = &report.violation {
            println!(
                "BROKEN {} at step {} ({} µs): {}",
                v.invariant, v.step, v.at_us, v.detail
            );
            return Ok(bug != Bug::None);
        }
        println!("every invariant held");
        return Ok(bug == Bug::None);
    }
    let started = Instant::now();
    let budget = Duration::from_secs(args.seconds);
    let (mut ran, mut failed, mut steps) = (0_u64, Vec::new(), 0_u64);
    for seed in args.from..args.from.saturating_add(args.seeds) {
        if started.elapsed() >= budget {
            break;
        }
        let report = run_seed(seed, &config);
        ran += 1;
        steps += report.stats.steps;
        if let Some(v) = report.violation {
            println!(
                "seed {seed}: BROKEN {} at step {}: {}",
                v.invariant, v.step, v.detail
            );
            failed.push(seed);
        }
    }
    println!(
        "sim ({}): {ran} seeds from {} in {:.1?}, {steps} steps, {} failed{}",
        bug.name(),
        args.from,
        started.elapsed(),
        failed.len(),
        failed
            .first()
            .map(|s| format!(
                "; replay: cargo xtask sim --seed {s} --trace --bug {}",
                bug.name()
            ))
            .unwrap_or_default()
    );
    Ok(if bug == Bug::None {
        failed.is_empty()
    } else {
        !failed.is_empty()
    })
}
