//! `lava-v1`: the admin command for LAVA's V1 data.  One module per
//! command:
//!
//! * [`status`]: what V1 data exists (read-only);
//! * [`preflight`]: the maintenance window and what the drop needs
//!   (read-only; exit status 1 when not ready);
//! * [`drop`](mod@drop): the V1 tables removed as the package's postinst
//!   does, in one transaction;
//! * [`jobs`]: `jobs rm --v1`, V1 jobs deleted as `lava-server manage jobs
//!   rm --v1` does, then their output directories;
//! * [`files`]: `files rm`, the V1 media directories once the tables are
//!   gone;
//! * [`backup`], [`restore`], [`report`]: the V1 data backed up and
//!   restored, a bug report with passwords masked;
//! * [`export`](mod@export): the V1 results in one SQLite file anyone can read;
//! * [`hold`]: `hold` and `unhold`, apt-mark for lava-server;
//! * [`maintenance`]: the holding page instead of LAVA's Apache site.
//!
//! Shared arguments live in [`args`]; every error reaches the admin
//! through one printer ([`render::error`]).  Data goes to stdout; logs and
//! errors go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lava_v1_core::config::{Paths, DEFAULT_INSTANCE_CONF, DEFAULT_SETTINGS_CONF, DEFAULT_STATE_DIR};

mod args;
mod backup;
mod drop;
mod export;
mod files;
mod hold;
mod jobs;
mod maintenance;
mod preflight;
mod render;
mod report;
mod restore;
mod spinner;
mod status;

/// Find and remove LAVA V1 test data (lava-server 2017.12 upgrade).
#[derive(Debug, Parser)]
#[command(name = "lava-v1", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// LAVA's instance configuration (database settings).
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_INSTANCE_CONF)]
    instance_conf: PathBuf,
    /// LAVA's JSON settings (for MEDIA_ROOT).
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SETTINGS_CONF)]
    settings_conf: PathBuf,
    /// Use this media root instead of settings.conf's MEDIA_ROOT.
    #[arg(long, global = true, value_name = "DIR")]
    media_root: Option<PathBuf>,
    /// Where the lock and the journal live.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report what V1 data exists, in the database and under the media root (read-only).
    Status(status::StatusArgs),
    /// Drop the V1 tables and testjob.results_bundle_id in one transaction,
    /// recording LAVA's 2017.12 migrations (what the package's postinst runs).
    Drop(drop::DropArgs),
    /// Check, read-only, the maintenance window and what the drop needs; exit 1 when not ready.
    ///
    /// The maintenance window (no job submitted, running or canceling; every
    /// device offline or retired) is what the upstream upgrade page
    /// recommends; the package does not require it.  This command is for
    /// admins and configuration management that want to enforce it before
    /// they run apt.  Exit status 0: in the window and nothing would stop
    /// the drop; 1: outside the window, a right missing, or an object
    /// depending on V1 data.
    Preflight(preflight::PreflightArgs),
    /// V1 test jobs: `jobs rm --v1` deletes them (rows and output directories).
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// V1 files: `files rm` removes the V1 media directories once the V1 tables are gone.
    Files {
        #[command(subcommand)]
        command: files::FilesCommand,
    },
    /// Back up the V1 data (pg_dump archive, V1 job rows, V1 media), verified, mode 0600.
    Backup(backup::BackupArgs),
    /// Write the V1 results into one self-contained, checked SQLite file (mode 0600) any tool can read.
    Export(export::ExportArgs),
    /// Restore a backup into an instance without V1 data (an archive instance kept on 2017.10).
    Restore(restore::RestoreArgs),
    /// Bundle logs, versions, debconf answers and the V1 status for a bug report (passwords masked).
    Report(report::ReportArgs),
    /// Hold lava-server with apt-mark, so apt stops offering the upgrade.
    Hold,
    /// Undo `hold`.
    Unhold,
    /// Replace LAVA's Apache site with a holding page (HTTP 503) during the upgrade, and back.
    Maintenance(maintenance::MaintenanceArgs),
}

/// Whatever a command can fail with: the core's errors and the holding
/// page's, told the same way.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Core(#[from] lava_v1_core::Error),
    #[error(transparent)]
    HoldingPage(#[from] lava_v1_holdpage::Error),
}

impl lava_v1_core::Hinted for Failure {
    fn hint(&self) -> Option<String> {
        match self {
            Failure::Core(e) => e.hint(),
            Failure::HoldingPage(e) => e.hint(),
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    let cli = Cli::parse();
    let paths = Paths {
        instance_conf: cli.global.instance_conf,
        settings_conf: cli.global.settings_conf,
        media_root: cli.global.media_root,
        state_dir: cli.global.state_dir,
    };
    match run(&paths, cli.command) {
        Ok(code) => code,
        Err(e) => {
            render::error(&e);
            ExitCode::FAILURE
        }
    }
}

fn run(paths: &Paths, command: Command) -> Result<ExitCode, Failure> {
    Ok(match command {
        Command::Status(args) => status::run(paths, args)?,
        Command::Drop(args) => drop::run(paths, args)?,
        Command::Preflight(args) => preflight::run(paths, args)?,
        Command::Jobs { command } => jobs::run(paths, command)?,
        Command::Files { command } => files::run(paths, command)?,
        Command::Backup(args) => backup::run(paths, args)?,
        Command::Export(args) => export::run(paths, args)?,
        Command::Restore(args) => restore::run(paths, args)?,
        Command::Report(args) => report::run(paths, args)?,
        Command::Hold => hold::command(true),
        Command::Unhold => hold::command(false),
        Command::Maintenance(args) => maintenance::run(paths, args)?,
    })
}
