//! Fact collection for each ACES stage (specs/aces.md has the table of checks).

mod code;
mod security;
mod spec;
mod tools;

use serde_json::Value;

use super::facts::{Ctx, Facts};

/// Collects the facts of one stage; an unknown name yields facts with no checks, which policies deny.
pub(crate) fn collect(ctx: &Ctx, stage: &str) -> Value {
    let mut facts = Facts::new(ctx, stage);
    match stage {
        "spec" => spec::collect(ctx, &mut facts),
        "schema" => tools::schema(ctx, &mut facts),
        "static" => code::static_analysis(ctx, &mut facts),
        "build" => tools::build(ctx, &mut facts),
        "unit" => code::unit(ctx, &mut facts),
        "integration" => tools::integration(ctx, &mut facts),
        "security" => security::collect(ctx, &mut facts),
        "perf" => tools::perf(ctx, &mut facts),
        "chaos" => tools::chaos(ctx, &mut facts),
        "observability" => code::observability(ctx, &mut facts),
        "compat" => tools::compat(ctx, &mut facts),
        "deploy" => tools::deploy(ctx, &mut facts),
        _ => {}
    }
    facts.into_json()
}
