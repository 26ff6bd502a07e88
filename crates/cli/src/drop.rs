//! `lava-v1 drop --yes`: the V1 tables removed exactly as the package's
//! postinst does (LAVA 2017.12's migrations `lava_scheduler_app 0029` and
//! `dashboard_app 0023`), in one transaction.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::config::Paths;
use lava_v1_core::drop::DropOptions;
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

use crate::args::{Json, LockTimeout};
use crate::{render, spinner};

/// Options of `lava-v1 drop`.
#[derive(Debug, Args)]
pub(crate) struct DropArgs {
    /// Confirm: the V1 tables are deleted permanently.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    lock: LockTimeout,
    #[command(flatten)]
    output: Json,
}

pub(crate) fn run(paths: &Paths, args: DropArgs) -> Result<ExitCode, Error> {
    if !args.yes {
        render::refusal(
            "`drop` permanently deletes every V1 table (dashboard_app_*) and testjob.results_bundle_id",
            "check `lava-v1 status` and your backup, then run `lava-v1 drop --yes`",
        );
        return Ok(ExitCode::from(2));
    }
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let options = DropOptions { lock_timeout: args.lock.lock_timeout, ..DropOptions::default() };
    let outcome = state.step("drop", ToString::to_string, || {
        let _spinner = spinner::Spinner::new("dropping the V1 tables in one transaction…");
        lava_v1_core::drop::run(paths, &options)
    })?;
    let mut out = std::io::stdout().lock();
    if args.output.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&outcome).expect("outcome serialises"));
    } else {
        let _ = out.write_all(render::outcome(&outcome).as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}
