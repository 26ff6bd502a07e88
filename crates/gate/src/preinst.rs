//! `preinst`: the gate itself.
//!
//! Call forms (Debian Policy 6.5): `install [OLD [NEW]]`,
//! `upgrade OLD [NEW]`, `abort-upgrade NEW`.  On an upgrade (or a reinstall
//! over kept configuration) from before 2017.12 with V1 data present, only
//! the exact answer `true` lets dpkg go on; anything else exits non-zero,
//! so dpkg aborts the upgrade and the old version stays configured and
//! running.  The value is never reset; only the seen flag is cleared, so
//! the question comes back at the next attempt.

use std::io::{BufRead, Write};

use lava_v1_debconf::{is_true, Debconf};
use lava_v1_maintscript::{PreinstAction, Version, V1_REMOVAL_RELEASE};

use lava_v1_core::backup::DEFAULT_BACKUP_DIR;

use crate::decision::{Answer, Decision};
use crate::presence::{self, Presence};
use crate::{
    messages, Context, Result, Verdict, BACKUP_QUESTION, EXPORT_QUESTION, PACKAGE_VERSION, QUESTION,
};
use lava_v1_core::explain::one_line;

/// The environment variable that tells the `config` script (a shell
/// script, `debian/lava-server.config`) that V1 data was found, and what:
/// the question's `${details}`.  The preinst sets it before it starts the
/// debconf frontend, which runs `config` first; the config script cannot
/// look at the database itself (it may run before anything is unpacked).
pub const FOUND_ENV: &str = "LAVA_SERVER_V1_FOUND";

/// Does this call need a decision at all?  (Decides whether to start a
/// debconf frontend.)
pub fn gated(action: &PreinstAction) -> Result<Option<(Version, Option<Version>)>> {
    let (old, new) = match action {
        PreinstAction::Install { old: Some(old), new } => (old.clone(), new.clone()),
        PreinstAction::Upgrade { old, new } => (old.clone(), new.clone()),
        PreinstAction::Install { old: None, .. } | PreinstAction::AbortUpgrade { .. } => return Ok(None),
    };
    if old.is_before(&Version::parse(V1_REMOVAL_RELEASE)?) {
        Ok(Some((old, new)))
    } else {
        Ok(None)
    }
}

/// The part that needs no debconf: is there anything to decide?
pub fn presence(ctx: &Context) -> Presence {
    presence::check(ctx)
}

/// Records "no V1 data" for an upgrade nobody had to be asked about, once
/// the checks that would make the postinst's drop of the empty V1 tables
/// fail have passed (the maintenance window does not matter here).
pub fn record_no_v1_data(ctx: &Context, old: &Version, new: Option<&Version>) -> Result<Verdict> {
    let new = new.map_or(PACKAGE_VERSION.to_owned(), |v| v.as_str().to_owned());
    let old = old.as_str();
    if let Err(e) = check_before_unpack(ctx, false, false)
        .and_then(|_| Decision::now(Answer::NoV1Data, old, &new).write(ctx).map_err(core_error))
    {
        return Ok(not_ready(ctx, old, &new, &e));
    }
    ctx.journal(&format!("preinst: upgrade {old} -> {new}: no V1 data found, not asked"));
    Ok(Verdict::ok())
}

/// Everything that would make the postinst fail and can be known now,
/// before dpkg unpacks anything (read-only): the database can be reached
/// with instance.conf's settings, the connecting role has the rights the
/// drop needs, no object of the admin's depends on V1 data, the backup and
/// the readable copy of the V1 results (those the admin chose) fit, and
/// the state directory can be written.
/// Returns the maintenance-window warning, if any: advice, not a failure.
pub fn check_before_unpack(
    ctx: &Context,
    backup: bool,
    export: bool,
) -> lava_v1_core::Result<Option<String>> {
    ctx.state().check_writable()?;
    let paths = ctx.target_paths()?;
    let dir = ctx.root.path(DEFAULT_BACKUP_DIR);
    let room = lava_v1_core::preflight::Room { dir: &dir, backup, export };
    let report = lava_v1_core::preflight::run(&paths, Some(room))?;
    report.enforce()?;
    Ok(report.window_warning())
}

fn core_error(e: crate::Error) -> lava_v1_core::Error {
    match e {
        crate::Error::Core(e) => e,
        other => lava_v1_core::Error::refused(other.to_string()),
    }
}

/// The preinst stops the upgrade on a failed check: journalled, and told
/// with its cause and fix.  The answer to the question is kept.
fn not_ready(ctx: &Context, old: &str, new: &str, e: &lava_v1_core::Error) -> Verdict {
    ctx.journal(&format!("preinst: upgrade {old} -> {new}: stopped before unpacking: {}", one_line(e)));
    Verdict::fail(messages::not_ready(old, new, &lava_v1_core::explain::render("lava-server preinst", e)))
}

/// The gate: reads the answer and lets the upgrade go on or stops it.
pub fn decide<R: BufRead, W: Write>(
    ctx: &Context,
    old: &Version,
    new: Option<&Version>,
    presence: &Presence,
    dc: &mut Debconf<R, W>,
) -> Result<Verdict> {
    let new = new.map_or(PACKAGE_VERSION.to_owned(), |v| v.as_str().to_owned());
    let old = old.as_str();
    let value = dc.get(QUESTION)?;
    let found = match presence {
        Presence::Found(s, _) => format!("V1 data found: {s}."),
        Presence::Unknown(why) => format!("Whether V1 data exists could not be checked: {why}."),
        Presence::None => "No V1 data was found.".to_owned(),
    };
    if is_true(&value) {
        // The backup is taken unless the admin said "false" to it; an
        // unknown or empty answer keeps the safe default.
        let backup = match dc.get(BACKUP_QUESTION) {
            Ok(v) => v != "false",
            Err(e) => {
                log::warn!("cannot read {BACKUP_QUESTION} ({e}); the backup will be taken");
                true
            }
        };
        // Likewise the readable copy of the V1 results.
        let export = match dc.get(EXPORT_QUESTION) {
            Ok(v) => v != "false",
            Err(e) => {
                log::warn!("cannot read {EXPORT_QUESTION} ({e}); the V1 results will be exported");
                true
            }
        };
        let _lock = match ctx.state().lock() {
            Ok(lock) => lock,
            Err(e) => return Ok(not_ready(ctx, old, &new, &e)),
        };
        // Before dpkg unpacks anything: whatever would make the postinst
        // fail, and can be known now, stops the upgrade here, where
        // failing is clean.  The answer is kept for the rerun.
        let warning = match check_before_unpack(ctx, backup, export) {
            Ok(w) => w,
            Err(e) => return Ok(not_ready(ctx, old, &new, &e)),
        };
        let mut decision = Decision::now(Answer::Remove, old, &new);
        decision.backup = backup;
        decision.export = export;
        if let Err(e) = decision.write(ctx) {
            return Ok(not_ready(ctx, old, &new, &core_error(e)));
        }
        ctx.journal(&format!(
            "preinst: upgrade {old} -> {new}: {QUESTION} = true, {BACKUP_QUESTION} = {backup}, {EXPORT_QUESTION} = {export}; decision recorded; {found}"
        ));
        return Ok(match warning {
            None => Verdict::ok(),
            Some(w) => {
                ctx.journal(&format!("preinst: {w}"));
                Verdict::ok_with(messages::prefixed(&w))
            }
        });
    }
    // Ask again next time, but never turn a "no" (or no answer) into a
    // destructive default.
    dc.fset(QUESTION, "seen", "false")?;
    Decision::remove(ctx)?;
    ctx.journal(&format!(
        "preinst: upgrade {old} -> {new}: {QUESTION} = {value:?}; upgrade stopped, nothing deleted; {found}"
    ));
    Ok(Verdict::fail(messages::upgrade_stopped(old, &new, &value, &found)))
}
