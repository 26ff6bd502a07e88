//! `lava-v1 backup`: the V1 data backed up and verified (the work is the
//! core's, [`lava_v1_core::backup`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::backup::{self, BackupOptions, DEFAULT_BACKUP_DIR};
use lava_v1_core::config::Paths;
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

use crate::render;

/// Options of `lava-v1 backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Directory to create the backup in (a `lava-v1-<time>` directory, mode 0700).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BACKUP_DIR)]
    backup_dir: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
    /// Print on stderr where the time went, step by step.
    #[arg(long)]
    verbose: bool,
}

pub(crate) fn run(paths: &Paths, args: BackupArgs) -> Result<ExitCode, Error> {
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let options = BackupOptions { dir: args.backup_dir, ..BackupOptions::default() };
    let made = state.step(
        "backup",
        |made: &backup::Backup| format!("verified, {}", made.path.display()),
        || {
            let _spinner = crate::spinner::Spinner::new("backing up the V1 data and verifying the backup…");
            backup::backup(paths, &options)
        },
    )?;
    state.record_last_backup(&made.path)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&made).expect("serialises"));
    } else {
        let rows: i64 = made.manifest.tables.values().sum();
        let jobs = made.manifest.job_rows.first().map_or(0, |c| c.rows);
        let bytes: u64 = made.manifest.files.iter().map(|f| f.bytes).sum();
        let _ = writeln!(
            out,
            "V1 backup written and verified: {} tables ({} rows), {} V1 jobs, {}, {} in all.",
            made.manifest.tables.len(),
            render::thousands(rows),
            render::thousands(jobs),
            if made.manifest.media_root.is_some() { "the V1 media" } else { "no V1 media" },
            render::bytes(bytes)
        );
        let _ = writeln!(out, "{}", made.path.display());
    }
    if args.verbose {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "Time per step:");
        for p in &made.phases {
            let _ = writeln!(err, "  {:<42} {:>10.1} ms", p.name, p.us as f64 / 1000.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}
