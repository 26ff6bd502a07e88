//! `lava-v1 export`: the V1 results in one self-contained SQLite file,
//! checked before it gets its name (the work is the core's,
//! [`lava_v1_core::export`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::config::Paths;
use lava_v1_core::export::{self, ExportOptions, DEFAULT_EXPORT_DIR};
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

use crate::render;

/// Options of `lava-v1 export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file to write (never replaced); default: a new
    /// `lava-v1-results-<time>.sqlite` under /var/backups/lava-server/.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    json: crate::args::Json,
}

pub(crate) fn run(paths: &Paths, args: ExportArgs) -> Result<ExitCode, Error> {
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let options = ExportOptions { output: args.output, dir: DEFAULT_EXPORT_DIR.into() };
    let started = std::time::Instant::now();
    let made = state.step(
        "export",
        |made: &export::Export| {
            format!("checked, {} (in {:.1} s)", made.path.display(), started.elapsed().as_secs_f64())
        },
        || {
            let _spinner = crate::spinner::Spinner::new("exporting the V1 results and checking the file…");
            export::export(paths, &options)
        },
    )?;
    let mut out = std::io::stdout().lock();
    if args.json.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&made).expect("serialises"));
    } else {
        let rows: i64 = made.tables.values().sum();
        let _ = writeln!(
            out,
            "V1 results exported and checked: {} tables ({} rows), {} V1 jobs, {} media files ({}){}, {} in all.",
            made.tables.len(),
            render::thousands(rows),
            render::thousands(made.jobs),
            render::thousands(made.media_files as i64),
            render::bytes(made.media_bytes),
            if made.problems > 0 {
                format!(", {} files not stored (see the table export_problems)", render::thousands(made.problems as i64))
            } else {
                String::new()
            },
            render::bytes(made.bytes)
        );
        let _ = writeln!(out, "{}", made.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
