//! `backup`, `restore`, `report`, `hold` and `unhold`: thin wrappers around
//! the core and dpkg plumbing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::backup::{self, BackupOptions, DEFAULT_BACKUP_DIR};
use lava_v1_core::config::Paths;
use lava_v1_core::state::StateDir;
use lava_v1_core::{report, Error};
use lava_v1_maintscript::{transcript, DpkgQuery};

use crate::{hold, render};

/// Options of `lava-v1 backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Directory to create the backup in (a `lava-v1-<time>` directory, mode 0700).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BACKUP_DIR)]
    backup_dir: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `lava-v1 restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup directory (holding manifest.json).
    #[arg(value_name = "BACKUP")]
    backup: PathBuf,
}

/// Options of `lava-v1 report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Write the report here instead of the state directory.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// apt's log directory.
    #[arg(long, value_name = "DIR", default_value = "/var/log/apt")]
    apt_log_dir: PathBuf,
}

pub(crate) fn backup(paths: &Paths, args: BackupArgs) -> Result<ExitCode, Error> {
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
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn restore(paths: &Paths, args: RestoreArgs) -> Result<ExitCode, Error> {
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

pub(crate) fn report(paths: &Paths, args: ReportArgs) -> Result<ExitCode, Error> {
    let sources = report::Sources {
        apt_log_dir: args.apt_log_dir,
        packaging: packaging(),
        ..report::Sources::default()
    };
    let path = report::write(paths, &sources, args.output.as_deref())?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "Report written (passwords masked). Attach it to your message to the lava-users mailing list:"
    );
    let _ = writeln!(std::io::stdout().lock(), "{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The report's sections from the packaging system: package versions,
/// dpkg's audit and the debconf answers.
fn packaging() -> Vec<report::Section> {
    let dpkg = DpkgQuery::new();
    let section = |title: &str, body: String| report::Section { title: title.to_owned(), body };
    vec![
        section("packages", dpkg.list(&["lava-*", "postgresql*", "python*-django"])),
        section("dpkg audit (dpkg -C)", dpkg.audit()),
        section(
            "debconf answers (debconf-show lava-server)",
            transcript(Path::new("debconf-show"), &["lava-server".to_owned()]),
        ),
    ]
}

pub(crate) fn hold(hold_it: bool) -> ExitCode {
    let report = hold::run(hold_it);
    if report.ok {
        let _ = writeln!(std::io::stdout().lock(), "{}", report.message);
        ExitCode::SUCCESS
    } else {
        render::error(&report.error());
        ExitCode::FAILURE
    }
}
