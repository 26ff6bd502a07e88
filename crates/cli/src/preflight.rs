//! `lava-v1 preflight [--json]`: the maintenance window and what the drop
//! needs, read-only; exit status 1 when not ready.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::config::Paths;
use lava_v1_core::preflight::Preflight;
use lava_v1_core::Error;

use crate::args::Json;
use crate::render;

/// Options of `lava-v1 preflight`.
#[derive(Debug, Args)]
pub(crate) struct PreflightArgs {
    #[command(flatten)]
    output: Json,
}

/// The JSON document: the checks and the two verdicts.
#[derive(serde::Serialize)]
struct Document<'a> {
    in_maintenance_window: bool,
    ready: bool,
    #[serde(flatten)]
    report: &'a Preflight,
}

pub(crate) fn run(paths: &Paths, args: PreflightArgs) -> Result<ExitCode, Error> {
    let report = lava_v1_core::preflight::run(paths, None)?;
    let passed = report.in_maintenance_window() && report.ready();
    let mut out = std::io::stdout().lock();
    if args.output.json {
        let doc = Document {
            in_maintenance_window: report.in_maintenance_window(),
            ready: report.ready(),
            report: &report,
        };
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("preflight serialises"));
    } else {
        let _ = out.write_all(render::preflight(&report).as_bytes());
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
