//! `lava-v1 jobs rm --v1`: arguments, progress and the final report.  The
//! work is the core's ([`lava_v1_core::jobs`]).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use lava_v1_core::config::Paths;
use lava_v1_core::jobs::{self, JobsRmOptions, JobsRmReport, Progress, DEFAULT_BATCH_SIZE};
use lava_v1_core::state::StateDir;
use lava_v1_core::Error;

use crate::args::{Age, LockTimeout};
use crate::render::{bytes, left, left_exit, refusal, tally, thousands};

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Delete V1 test jobs and everything that depends on them, as
    /// `lava-server manage jobs rm --v1` does, then their output directories.
    Rm(JobsRmArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JobsRmArgs {
    /// Select V1 jobs (required: this tool removes nothing else).
    #[arg(long)]
    v1: bool,
    /// Only jobs that ended more than this long ago: <N>h or <N>d.  Jobs
    /// that never ended are not selected.
    #[arg(long, value_name = "AGE", value_parser = crate::args::age)]
    older_than: Option<Age>,
    /// Count rows, directories and bytes, and list the directories;
    /// change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print on stderr where the time went, phase by phase.
    #[arg(long)]
    verbose: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Jobs per transaction.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    #[command(flatten)]
    lock: LockTimeout,
}

/// Shows progress: a bar on a terminal, a log line now and then otherwise.
struct ProgressDisplay {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    human_dry_run: bool,
}

impl ProgressDisplay {
    fn new(human_dry_run: bool) -> ProgressDisplay {
        ProgressDisplay { bar: None, started: Instant::now(), last_line: Instant::now(), human_dry_run }
    }

    fn show(&mut self, p: Progress<'_>, planned: &mut Vec<jobs::PlannedDir>) {
        match p {
            Progress::Started { total } => {
                log::info!("{} V1 jobs selected", thousands(total as i64));
                if std::io::stderr().is_terminal() && total > 0 && !self.human_dry_run {
                    let bar = indicatif::ProgressBar::new(total);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{elapsed_precise} [{bar:40}] {pos}/{len} jobs ({per_sec}, {eta} left)",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                }
            }
            Progress::Recovering { jobs } => {
                log::info!(
                    "finishing an interrupted run: removing the directories of {jobs} jobs it deleted"
                );
            }
            Progress::Batch { done, total } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                } else if self.last_line.elapsed() >= Duration::from_secs(5) || done == total {
                    self.last_line = Instant::now();
                    let secs = self.started.elapsed().as_secs_f64().max(0.001);
                    log::info!(
                        "{} of {} V1 jobs removed ({:.0} jobs/s)",
                        thousands(done as i64),
                        thousands(total as i64),
                        done as f64 / secs
                    );
                }
            }
            Progress::Planned(dir) => {
                if self.human_dry_run {
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "* job {}: {} ({} files, {})",
                        dir.job,
                        dir.path,
                        thousands(dir.tally.files as i64),
                        bytes(dir.tally.bytes)
                    );
                } else {
                    planned.push(dir.clone());
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub(crate) fn run(paths: &Paths, command: JobsCommand) -> Result<ExitCode, Error> {
    let JobsCommand::Rm(args) = command;
    if !args.v1 {
        refusal(
            "`jobs rm` needs `--v1`: this tool removes V1 jobs only",
            "run `lava-v1 jobs rm --v1 --dry-run` to see what would go",
        );
        return Ok(ExitCode::from(2));
    }
    let options = JobsRmOptions {
        older_than: args.older_than.as_ref().map(|a| a.duration),
        dry_run: args.dry_run,
        batch_size: args.batch_size,
        lock_timeout: args.lock.lock_timeout,
    };
    let state = StateDir::new(&paths.state_dir);
    let _lock = state.lock()?;
    let what = format!(
        "jobs rm --v1{}{}",
        args.older_than.as_ref().map(|a| format!(" --older-than {}", a.text)).unwrap_or_default(),
        if args.dry_run { " --dry-run" } else { "" }
    );
    let mut display = ProgressDisplay::new(args.dry_run && !args.json);
    let mut planned = Vec::new();
    let mut work = || {
        let result = jobs::run(paths, &state, &options, &mut |p| display.show(p, &mut planned));
        display.finish();
        result
    };
    let summary = |report: &JobsRmReport| {
        format!(
            "{} jobs removed in {} batches ({} stuck), {} output directories, {} files, {} bytes freed, {} left",
            report.jobs_removed,
            report.batches,
            report.stuck_jobs,
            report.output_dirs.found,
            report.output_dirs.freed.files,
            report.output_dirs.freed.bytes,
            report.left.len() as u64 + report.left_unlisted
        )
    };
    // A dry run changes nothing and is not journalled.
    let mut report = if args.dry_run { work()? } else { state.step(&what, summary, work)? };
    let mut out = std::io::stdout().lock();
    if args.json {
        report.planned = planned;
        let text = serde_json::to_string_pretty(&report).expect("report serialises");
        let _ = writeln!(out, "{text}");
    } else {
        let _ = out.write_all(jobs_report(&report).as_bytes());
    }
    if args.verbose {
        let _ = std::io::stderr().lock().write_all(phases(&report).as_bytes());
    }
    Ok(left_exit(report.complete(), report.left.len() as u64 + report.left_unlisted))
}

/// The human-readable report of `jobs rm`.
pub(crate) fn jobs_report(r: &JobsRmReport) -> String {
    let mut s = String::new();
    let secs = r.elapsed_ms as f64 / 1000.0;
    if r.dry_run {
        let _ = writeln!(s, "Dry run: nothing was changed.");
        let _ = writeln!(s, "V1 jobs that would be removed: {}", thousands(r.jobs_selected as i64));
    } else {
        let _ = writeln!(
            s,
            "V1 jobs removed: {} of {} selected, in {} transactions ({secs:.1} s)",
            thousands(r.jobs_removed as i64),
            thousands(r.jobs_selected as i64),
            r.batches
        );
    }
    if r.stuck_jobs > 0 {
        let _ = writeln!(
            s,
            "Of these, {} were stuck in submitted, running or canceling (no V1 dispatcher exists past the drop to finish them).",
            thousands(r.stuck_jobs as i64)
        );
    }
    if r.recovered_jobs > 0 {
        let _ = writeln!(
            s,
            "An interrupted run's last {} jobs had their directories removed first.",
            thousands(r.recovered_jobs as i64)
        );
    }
    let verb = if r.dry_run { "that would be " } else { "" };
    let _ = writeln!(s, "\nRows {verb}deleted:");
    for (table, n) in r.rows_deleted.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(s, "  {table:<48} {:>12}", thousands(*n as i64));
    }
    if r.rows_set_null.values().any(|n| *n > 0) {
        let _ = writeln!(s, "Columns {verb}set to NULL:");
        for (col, n) in r.rows_set_null.iter().filter(|(_, n)| **n > 0) {
            let _ = writeln!(s, "  {col:<48} {:>12}", thousands(*n as i64));
        }
    }
    let d = &r.output_dirs;
    let _ = writeln!(
        s,
        "\nOutput directories under {}: {} found, {} {}",
        r.media_root,
        thousands(d.found as i64),
        thousands(d.removed as i64),
        if r.dry_run { "removable" } else { "removed" }
    );
    if d.empty_date_dirs_removed > 0 {
        let _ =
            writeln!(s, "Empty date directories removed: {}", thousands(d.empty_date_dirs_removed as i64));
    }
    let _ = writeln!(s, "{}: {}", if r.dry_run { "Would free" } else { "Freed" }, tally(&d.freed));
    left(&mut s, &r.left, r.left_unlisted);
    let _ = writeln!(s, "\nV1 jobs left in the database: {}", thousands(r.v1_jobs_remaining as i64));
    s
}

/// Where the time of a `jobs rm` run went, longest phase first.
fn phases(r: &JobsRmReport) -> String {
    let mut s = String::from("Time per phase:\n");
    let mut phases: Vec<(&&str, &u64)> = r.phases_us.iter().collect();
    phases.sort_by(|a, b| b.1.cmp(a.1));
    let accounted: u64 = r.phases_us.values().sum();
    for (name, us) in phases {
        let _ = writeln!(s, "  {name:<42} {:>10.1} ms", *us as f64 / 1000.0);
    }
    let total_us = (r.elapsed_ms * 1000) as u64;
    let _ = writeln!(
        s,
        "  {:<42} {:>10.1} ms",
        "(connecting and the rest)",
        total_us.saturating_sub(accounted) as f64 / 1000.0
    );
    let _ = writeln!(s, "  {:<42} {:>10.1} ms", "total", r.elapsed_ms as f64);
    s
}
