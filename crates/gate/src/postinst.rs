//! `postinst`: acts on the recorded decision.
//!
//! Call forms (Debian Policy 6.5): `configure OLD` (empty on a first
//! install; on a retry after a failure dpkg passes the same OLD again),
//! `abort-upgrade NEW`, `abort-remove`, `abort-remove in-favour PKG VER`,
//! `abort-deconfigure in-favour PKG VER [removing PKG VER]`,
//! `triggered TRIGGERS`.
//!
//! On `configure` from before 2017.12, once the removal is agreed, it
//! takes the backup and writes the readable copy of the V1 results (one
//! SQLite file in the backup's directory, `lava-server/exportv1`), each
//! as the admin chose and each timed on a journal line of its own, then
//! runs the core drop, which is one transaction: on failure it exits non-zero, dpkg leaves the package
//! half-configured, nothing was removed, and `dpkg --configure -a` after
//! fixing the cause runs it again from the start.  The abort call forms
//! have nothing to undo (nothing is changed before `configure`) and succeed
//! quietly, as dpkg's error unwinding needs.

use lava_v1_core::backup::{self, BackupOptions, DEFAULT_BACKUP_DIR};
use lava_v1_core::detect;
use lava_v1_core::drop::{self, DropOptions, DropOutcome};
use lava_v1_core::export::{self, ExportOptions};
use lava_v1_holdpage as holdpage;
use lava_v1_maintscript::{upgrade_from_before, PostinstAction, V1_REMOVAL_RELEASE};

use crate::decision::{Answer, Decision};
use crate::progress::{Progress, Step};
use crate::{messages, Context, Result, Verdict};
use lava_v1_core::explain::{self, one_line};

/// How the postinst names itself in an error.
const SCRIPT: &str = "lava-server postinst";

/// Runs the postinst's logic.
pub fn run(
    ctx: &Context,
    action: &PostinstAction,
    options: &DropOptions,
    progress: &mut dyn Progress,
) -> Result<Verdict> {
    let old = match action {
        PostinstAction::Configure { most_recently_configured } => most_recently_configured.as_ref(),
        other => {
            log::debug!("postinst {other:?}: nothing to undo");
            return Ok(Verdict::ok());
        }
    };
    if !upgrade_from_before(old, V1_REMOVAL_RELEASE)? {
        log::debug!("postinst: not an upgrade from before {V1_REMOVAL_RELEASE}; no V1 removal");
        return Ok(Verdict::ok());
    }
    let mut run = Configure {
        started: std::time::Instant::now(),
        ctx,
        old: old.map(|v| v.as_str().to_owned()).unwrap_or_default(),
        journal_path: ctx.state().journal_path(),
        notes: Vec::new(),
        progress,
    };
    let decision = Decision::read(ctx);
    let _lock = match ctx.state().lock() {
        Ok(l) => l,
        Err(e) => {
            return Ok(Verdict::fail(messages::drop_failed(&explain::render(SCRIPT, &e), &run.journal_path)))
        }
    };
    let next = match decision.as_ref() {
        Some(d) if d.answer == Answer::Remove => run.prepare_removal(d),
        _ => run.check_only_empty_tables(decision.is_none()),
    };
    Ok(match next {
        Next::Drop => run.drop(options),
        Next::Done(verdict) => verdict,
    })
}

/// What comes after a step of `configure`.
enum Next {
    /// Go on with the drop.
    Drop,
    /// Stop here with this verdict.
    Done(Verdict),
}

/// One `postinst configure` from a version before 2017.12.
struct Configure<'a> {
    /// When `configure` began (the upgrade's downtime is measured from here).
    started: std::time::Instant,
    ctx: &'a Context,
    /// The version configured before (dpkg's argument).
    old: String,
    journal_path: std::path::PathBuf,
    /// What to tell the admin at the end.
    notes: Vec<String>,
    progress: &'a mut dyn Progress,
}

impl Configure<'_> {
    fn journal(&self, event: &str) {
        self.ctx.journal(&format!("postinst: configure {}: {event}", self.old));
    }

    /// The drop failed, or could not start: journalled, the holding page
    /// put up, and the admin told what to do.
    fn fail(&mut self, e: &lava_v1_core::Error) -> Verdict {
        self.progress.done();
        self.journal(&format!("FAILED, nothing removed: {}", one_line(e)));
        let mut message = messages::drop_failed(&explain::render(SCRIPT, e), &self.journal_path);
        message.push_str(&hold_the_site(self.ctx));
        Verdict::fail(message)
    }

    /// The admin agreed: the checks (the rights and the objects depending
    /// on V1 data, which the preinst checked already: this catches what
    /// changed since; the maintenance window is advice), then the backup.
    fn prepare_removal(&mut self, decision: &Decision) -> Next {
        self.journal("decision is remove");
        match pending(self.ctx) {
            Ok(true) => {}
            Ok(false) => {
                self.journal("the V1 tables are already gone");
                return Next::Done(Verdict::ok());
            }
            Err(e) => return Next::Done(self.fail(&e)),
        }
        self.progress.step(Step::Preflight);
        match preflight(self.ctx) {
            Ok(None) => {}
            Ok(Some(warning)) => {
                self.journal(&warning);
                self.notes.push(messages::prefixed(&warning).trim_end().to_owned());
            }
            Err(e) => return Next::Done(self.fail(&e)),
        }
        // The readable copy goes beside the backup, into its directory.
        let mut export_dir = self.ctx.root.path(DEFAULT_BACKUP_DIR);
        if decision.backup {
            self.progress.step(Step::Backup);
            match backup(self.ctx, &decision.time) {
                Ok(path) => {
                    self.notes.push(format!(
                        "lava-server: the V1 data was backed up to {} (verified; restore with `lava-v1 restore`).",
                        path.display()
                    ));
                    export_dir = path;
                }
                Err(e) => return Next::Done(self.fail(&e)),
            }
        } else {
            self.journal("backup skipped, as the admin chose");
        }
        if decision.export {
            match self.export(&export_dir) {
                Ok(path) => self.notes.push(format!(
                    "lava-server: the V1 results were exported to {} (checked; read it with `sqlite3 -readonly {}`: see README.Debian).",
                    path.display(),
                    path.display()
                )),
                Err(e) => return Next::Done(self.fail(&e)),
            }
        } else {
            self.journal("export of the V1 results skipped, as the admin chose");
        }
        self.journal("dropping the V1 tables");
        Next::Drop
    }

    /// The readable copy of the V1 results, a new SQLite file in `dir`,
    /// written and checked on one snapshot before the drop; its time on a
    /// journal line of its own.
    fn export(&mut self, dir: &std::path::Path) -> lava_v1_core::Result<std::path::PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let name =
            format!("lava-v1-results-{}.sqlite", lava_v1_core::state::utc_now().replace([':', '-'], ""));
        let file = dir.join(name);
        self.progress.step_writing(Step::Export, &file.display().to_string());
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| {
            lava_v1_core::Error::Export { path: dir.to_owned(), doing: "creating".into(), source }
        })?;
        let paths = self.ctx.target_paths()?;
        self.ctx.journal(&format!("postinst: exporting the V1 results to {}", file.display()));
        let started = std::time::Instant::now();
        let made = export::export(&paths, &ExportOptions { output: Some(file), dir: dir.to_owned() })?;
        self.ctx.journal(&format!(
            "postinst: export checked: {} ({} rows, {} media files, {} not stored; in {:.1} s)",
            made.path.display(),
            made.tables.values().sum::<i64>(),
            made.media_files,
            made.problems,
            started.elapsed().as_secs_f64()
        ));
        Ok(made.path)
    }

    /// Nobody agreed to remove V1 data: only empty V1 tables may go.
    fn check_only_empty_tables(&mut self, no_decision: bool) -> Next {
        let state = self.ctx.paths.database().and_then(|db| {
            lava_v1_core::db::connect(&db).and_then(|mut c| detect::inspect(&mut c, &db.describe(), true))
        });
        let state = match state {
            Ok(s) => s,
            Err(e) => return Next::Done(self.fail(&e)),
        };
        if state.has_v1_rows() {
            let reason = if no_decision {
                "no decision to remove it was recorded at the start of the upgrade"
            } else {
                "it appeared after the start of the upgrade, when none was found"
            };
            self.journal(&format!("V1 rows present but {reason}; refused"));
            return Next::Done(Verdict::fail(messages::no_decision(reason, &self.journal_path)));
        }
        // The rights the drop needs (the preinst checked them too); the
        // maintenance window does not matter for empty tables.
        if let Err(e) = lava_v1_core::preflight::run(&self.ctx.paths, None).and_then(|r| r.enforce()) {
            return Next::Done(self.fail(&e));
        }
        self.journal("no V1 rows; dropping the empty V1 tables");
        Next::Drop
    }

    /// The drop itself, and what to tell the admin.
    fn drop(mut self, options: &DropOptions) -> Verdict {
        self.progress.step(Step::Drop);
        let drop_started = std::time::Instant::now();
        // The rights were checked above, the window is advice already given.
        let outcome = drop::run(&self.ctx.paths, &DropOptions { preflight: false, ..options.clone() });
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return self.fail(&e),
        };
        self.progress.done();
        self.journal(&format!(
            "done: {outcome}; the drop took {:.1} s; configure took {:.1} s",
            drop_started.elapsed().as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        ));
        if let DropOutcome::Dropped(s) = &outcome {
            if !s.views_dropped.is_empty() {
                self.notes.push(format!(
                    "lava-server: V1 data removed. Run `lava-server manage refresh_queries --all` to recreate the query caches {}.",
                    s.views_dropped.join(", ")
                ));
            }
        }
        if self.notes.is_empty() {
            Verdict::ok()
        } else {
            Verdict::ok_with(self.notes.join("\n") + "\n")
        }
    }
}

/// The upstream page: when the upgrade fails, cut all access to the
/// instance at once.  If LAVA's Apache site is enabled, the holding page
/// replaces it (and stays until the admin turns it off).
fn hold_the_site(ctx: &Context) -> String {
    let defaults = holdpage::Options::default();
    let options = holdpage::Options {
        apache_root: ctx.root.path(&defaults.apache_root),
        page_dir: ctx.root.path(&defaults.page_dir),
        state_dir: ctx.paths.state_dir.clone(),
        ..defaults
    };
    match holdpage::enable_if_site_enabled(&options) {
        Ok(None) => String::new(),
        Ok(Some(_)) => {
            ctx.journal("postinst: the holding page replaces the lava-server Apache site");
            "lava-server: To keep users out while this is fixed, the lava-server Apache site now answers\n\
             lava-server: every request with a holding page (HTTP 503). Once the upgrade has completed, run:\n\
             \x20   lava-v1 maintenance off\n"
                .to_owned()
        }
        Err(e) => {
            ctx.journal(&format!("postinst: could not switch the holding page on: {}", one_line(&e)));
            format!(
                "lava-server: warning: the holding page could not replace the Apache site ({}).\n\
                 lava-server: Cut access to this instance yourself until the upgrade has completed.\n",
                one_line(&e)
            )
        }
    }
}

fn pending(ctx: &Context) -> lava_v1_core::Result<bool> {
    let db = ctx.paths.database()?;
    let mut client = lava_v1_core::db::connect(&db)?;
    Ok(detect::inspect(&mut client, &db.describe(), false)?.drop_pending())
}

/// The blocking checks; the maintenance-window warning, if any.
fn preflight(ctx: &Context) -> lava_v1_core::Result<Option<String>> {
    let report = lava_v1_core::preflight::run(&ctx.paths, None)?;
    report.enforce()?;
    Ok(report.window_warning())
}

/// Takes the backup, or reuses a verified one taken since the decision
/// (a rerun after a failed drop need not copy everything again) when it is
/// a backup of this very database and its V1 row counts are still the
/// live ones.
fn backup(ctx: &Context, decided: &str) -> lava_v1_core::Result<std::path::PathBuf> {
    let paths = ctx.target_paths()?;
    let options = BackupOptions { dir: ctx.root.path(DEFAULT_BACKUP_DIR), ..BackupOptions::default() };
    if let Some(path) = ctx.state().last_backup() {
        if let Ok(manifest) = backup::verify(&path, &options) {
            if !decided.is_empty() && manifest.created.as_str() >= decided {
                match backup::differs_from_live(&paths, &manifest) {
                    Ok(None) => {
                        ctx.journal(&format!("postinst: reusing the verified backup {}", path.display()));
                        return Ok(path);
                    }
                    Ok(Some(why)) => {
                        ctx.journal(&format!("postinst: not reusing the backup {}: {why}", path.display()))
                    }
                    Err(e) => ctx.journal(&format!(
                        "postinst: not reusing the backup {}: it cannot be compared with the database: {}",
                        path.display(),
                        one_line(&e)
                    )),
                }
            }
        }
    }
    ctx.journal(&format!("postinst: backing up the V1 data into {}", options.dir.display()));
    let started = std::time::Instant::now();
    let made = backup::backup(&paths, &options)?;
    ctx.state().record_last_backup(&made.path)?;
    ctx.journal(&format!(
        "postinst: backup verified: {} (in {:.1} s: {})",
        made.path.display(),
        started.elapsed().as_secs_f64(),
        made.phases_line()
    ));
    Ok(made.path)
}
