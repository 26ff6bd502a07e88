//! `lava-v1`: the admin command for LAVA's V1 data.
//!
//! * `lava-v1 status [--json]` reports what V1 data exists (read-only).
//! * `lava-v1 drop --yes` removes the V1 tables exactly as the package's
//!   postinst does: LAVA 2017.12's migrations `lava_scheduler_app 0029` and
//!   `dashboard_app 0023`, in one transaction.
//! * `lava-v1 preflight [--json]` checks, read-only, the maintenance window
//!   and what the drop needs; exit status 1 when not ready.
//! * `lava-v1 jobs rm --v1` deletes V1 jobs as `lava-server manage jobs rm
//!   --v1` does, set-based in batches, then their output directories.
//! * `lava-v1 files rm` removes the V1 media directories once the V1 tables
//!   are gone.
//!
//! Data goes to stdout; logs and errors go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lava_v1_core::config::{Paths, DEFAULT_INSTANCE_CONF, DEFAULT_SETTINGS_CONF, DEFAULT_STATE_DIR};
use lava_v1_core::drop::{DropOptions, DropOutcome};
use lava_v1_core::state::StateDir;
use lava_v1_core::{detect, Error};

mod admin;
mod hold;
mod maintenance;
mod removal;
mod render;
mod spinner;

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
    Status {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop the V1 tables and testjob.results_bundle_id in one transaction,
    /// recording LAVA's 2017.12 migrations (what the package's postinst runs).
    Drop {
        /// Confirm: the V1 tables are deleted permanently.
        #[arg(long)]
        yes: bool,
        /// Seconds to wait for each table lock before giving up.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        lock_timeout: u64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check, read-only, the maintenance window and what the drop needs; exit 1 when not ready.
    ///
    /// The maintenance window (no job submitted, running or canceling; every
    /// device offline or retired) is what the upstream upgrade page
    /// recommends; the package does not require it.  This command is for
    /// admins and configuration management that want to enforce it before
    /// they run apt.  Exit status 0: in the window and nothing would stop
    /// the drop; 1: outside the window, a right missing, or an object
    /// depending on V1 data.
    Preflight {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// V1 test jobs: `jobs rm --v1` deletes them (rows and output directories).
    Jobs {
        #[command(subcommand)]
        command: removal::JobsCommand,
    },
    /// V1 files: `files rm` removes the V1 media directories once the V1 tables are gone.
    Files {
        #[command(subcommand)]
        command: removal::FilesCommand,
    },
    /// Back up the V1 data (pg_dump archive, V1 job rows, V1 media), verified, mode 0600.
    Backup(admin::BackupArgs),
    /// Restore a backup into an instance without V1 data (an archive instance kept on 2017.10).
    Restore(admin::RestoreArgs),
    /// Bundle logs, versions, debconf answers and the V1 status for a bug report (passwords masked).
    Report(admin::ReportArgs),
    /// Hold lava-server with apt-mark, so apt stops offering the upgrade.
    Hold,
    /// Undo `hold`.
    Unhold,
    /// Replace LAVA's Apache site with a holding page (HTTP 503) during the upgrade, and back.
    Maintenance(maintenance::MaintenanceArgs),
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
    let outcome = match cli.command {
        Command::Maintenance(args) => maintenance::run(&paths, args).map_err(|e| render::error(&e)),
        command => run(&paths, command).map_err(|e| render::error(&e)),
    };
    outcome.unwrap_or(ExitCode::FAILURE)
}

fn run(paths: &Paths, command: Command) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Status { json } => {
            let report = detect::report(paths)?;
            if json {
                let text = serde_json::to_string_pretty(&report).expect("report serialises");
                let _ = writeln!(out, "{text}");
            } else {
                let _ = out.write_all(render::status(&report).as_bytes());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Drop { yes, lock_timeout, json } => {
            if !yes {
                render::refusal(
                    "`drop` permanently deletes every V1 table (dashboard_app_*) and testjob.results_bundle_id",
                    "check `lava-v1 status` and your backup, then run `lava-v1 drop --yes`",
                );
                return Ok(ExitCode::from(2));
            }
            let state = StateDir::new(&paths.state_dir);
            let _lock = state.lock()?;
            let options =
                DropOptions { lock_timeout: Duration::from_secs(lock_timeout), ..DropOptions::default() };
            let outcome = state.step("drop", ToString::to_string, || {
                let _spinner = spinner::Spinner::new("dropping the V1 tables in one transaction…");
                lava_v1_core::drop::run(paths, &options)
            })?;
            if json {
                let text = serde_json::to_string_pretty(&outcome).expect("outcome serialises");
                let _ = writeln!(out, "{text}");
            } else {
                let _ = out.write_all(render::outcome(&outcome).as_bytes());
            }
            Ok(match outcome {
                DropOutcome::AlreadyDone | DropOutcome::Dropped(_) => ExitCode::SUCCESS,
            })
        }
        Command::Preflight { json } => {
            let report = lava_v1_core::preflight::run(paths)?;
            let passed = report.in_maintenance_window() && report.ready();
            if json {
                #[derive(serde::Serialize)]
                struct Json<'a> {
                    in_maintenance_window: bool,
                    ready: bool,
                    #[serde(flatten)]
                    report: &'a lava_v1_core::preflight::Preflight,
                }
                let doc = Json {
                    in_maintenance_window: report.in_maintenance_window(),
                    ready: report.ready(),
                    report: &report,
                };
                let text = serde_json::to_string_pretty(&doc).expect("preflight serialises");
                let _ = writeln!(out, "{text}");
            } else {
                let _ = out.write_all(render::preflight(&report).as_bytes());
            }
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Jobs { command } => removal::jobs(paths, command),
        Command::Files { command } => removal::files(paths, command),
        Command::Backup(args) => admin::backup(paths, args),
        Command::Restore(args) => admin::restore(paths, args),
        Command::Report(args) => admin::report(paths, args),
        Command::Hold => Ok(admin::hold(true)),
        Command::Unhold => Ok(admin::hold(false)),
        Command::Maintenance(_) => unreachable!("`maintenance` is run by main"),
    }
}
