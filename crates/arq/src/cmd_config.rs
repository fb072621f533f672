//! `arq config check` and `arq config schema`.

use std::path::Path;
use std::process::ExitCode;

use arqon_config::{Config, ConfigError};

pub(crate) fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ ConfigError::Invalid { .. }) => {
            eprintln!("{error}");
            let count = error.problems().len();
            eprintln!(
                "{}: {count} problem{}",
                file.display(),
                if count == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(error.into()),
    }
}

pub(crate) fn schema() -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&Config::json_schema())?);
    Ok(ExitCode::SUCCESS)
}
