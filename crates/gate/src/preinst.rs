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

use crate::decision::{Answer, Decision};
use crate::presence::{self, Presence};
use crate::{messages, Context, Result, Verdict, BACKUP_QUESTION, PACKAGE_VERSION, QUESTION};

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

/// Records "no V1 data" for an upgrade nobody had to be asked about.
pub fn record_no_v1_data(ctx: &Context, old: &Version, new: Option<&Version>) -> Result<Verdict> {
    let new = new.map_or(PACKAGE_VERSION.to_owned(), |v| v.as_str().to_owned());
    Decision::now(Answer::NoV1Data, old.as_str(), &new).write(ctx)?;
    ctx.journal(&format!("preinst: upgrade {} -> {new}: no V1 data found, not asked", old.as_str()));
    Ok(Verdict::ok())
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
        Presence::Found(s) => format!("V1 data found: {s}."),
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
        let _lock = ctx.state().lock()?;
        let mut decision = Decision::now(Answer::Remove, old, &new);
        decision.backup = backup;
        decision.write(ctx)?;
        ctx.journal(&format!(
            "preinst: upgrade {old} -> {new}: {QUESTION} = true, {BACKUP_QUESTION} = {backup}; decision recorded; {found}"
        ));
        return Ok(Verdict::ok());
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
