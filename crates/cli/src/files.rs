//! `lava-v1 files rm`: arguments and the final report.  The work is the
//! core's ([`lava_v1_core::files`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use lava_v1_core::config::Paths;
use lava_v1_core::files::FilesRmReport;
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

use crate::render::{left, left_exit, tally};

#[derive(Debug, Subcommand)]
pub(crate) enum FilesCommand {
    /// Remove the V1 directories under the media root (bundles,
    /// compressed-bundles, attachments, testdef), once the V1 tables are gone.
    Rm {
        /// Count files and bytes; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(paths: &Paths, command: FilesCommand) -> Result<ExitCode, Error> {
    let FilesCommand::Rm { dry_run, json } = command;
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let work = || lava_v1_core::files::run(paths, dry_run);
    let summary = |report: &lava_v1_core::files::FilesRmReport| {
        format!(
            "{} files, {} bytes freed, {} left",
            report.freed.files,
            report.freed.bytes,
            report.left.len() as u64 + report.left_unlisted
        )
    };
    // A dry run changes nothing and is not journalled.
    let report = if dry_run { work()? } else { state.step("files rm", summary, work)? };
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&report).expect("report serialises");
        let _ = writeln!(out, "{text}");
    } else {
        let _ = out.write_all(files_report(&report).as_bytes());
    }
    Ok(left_exit(report.complete(), report.left.len() as u64 + report.left_unlisted))
}

/// The human-readable report of `files rm`.
pub(crate) fn files_report(r: &FilesRmReport) -> String {
    let mut s = String::new();
    if r.dry_run {
        let _ = writeln!(s, "Dry run: nothing was changed.");
    }
    let _ = writeln!(s, "V1 directories under {}:", r.media_root);
    for d in &r.dirs {
        let what = if !d.existed {
            "absent".to_owned()
        } else {
            format!("{}{}", if r.dry_run { "would free " } else { "freed " }, tally(&d.freed))
                + if d.complete { "" } else { " (not all of it, see below)" }
        };
        let _ = writeln!(s, "  {:<20} {what}", d.name);
    }
    let _ = writeln!(s, "{}: {}", if r.dry_run { "Would free" } else { "Freed" }, tally(&r.freed));
    left(&mut s, &r.left, r.left_unlisted);
    s
}
