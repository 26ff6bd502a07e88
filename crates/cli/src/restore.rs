//! `lava-v1 restore BACKUP`: a backup restored into an instance without
//! V1 data (an archive instance kept on 2017.10).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::backup::{self, BackupOptions};
use lava_v1_core::config::Paths;
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

/// Options of `lava-v1 restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup directory (holding manifest.json).
    #[arg(value_name = "BACKUP")]
    backup: PathBuf,
}

pub(crate) fn run(paths: &Paths, args: RestoreArgs) -> Result<ExitCode, Error> {
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let summary = backup::restore(paths, &args.backup, &BackupOptions::default())?;
    state.journal(&format!("restore: {} restored", args.backup.display()))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Restored {} V1 tables ({}) and V1 job rows: {}",
        summary.tables,
        if summary.created_schema { "created" } else { "into the existing empty tables" },
        summary.job_rows.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ")
    );
    let skipped: u64 = summary.job_rows_skipped.values().sum();
    if skipped > 0 {
        let _ = writeln!(out, "{skipped} job rows were already there and were kept as they are.");
    }
    Ok(ExitCode::SUCCESS)
}
