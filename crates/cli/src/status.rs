//! `lava-v1 status [--json]`: what V1 data exists, read-only.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::config::Paths;
use lava_v1_core::{detect, Error};

use crate::args::Json;
use crate::render;

/// Options of `lava-v1 status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    output: Json,
}

pub(crate) fn run(paths: &Paths, args: StatusArgs) -> Result<ExitCode, Error> {
    let report = detect::report(paths)?;
    let mut out = std::io::stdout().lock();
    if args.output.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&report).expect("report serialises"));
    } else {
        let _ = out.write_all(render::status(&report).as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}
