//! `lava-v1 hold` / `unhold`: keep apt from offering the lava-server
//! upgrade (the upstream page's advice for instances that keep their V1
//! data), and undo it.
//!
//! `apt-mark` changes dpkg's selections, which needs dpkg's lock; inside a
//! maintainer script dpkg holds that lock, so there it cannot work.  We
//! detect that case and say what to run afterwards instead of failing
//! with apt's lock error.

use std::io::Write;
use std::process::ExitCode;

use lava_v1_maintscript::{apt_mark, in_maintainer_script, AptMarkOp, AptMarkOutcome};

use crate::render;

const PACKAGE: &str = "lava-server";

/// What happened, for the admin.
pub(crate) struct HoldReport {
    /// The line to print.
    pub(crate) message: String,
    /// Whether it worked.
    pub(crate) ok: bool,
    /// What to do instead, when it did not.
    pub(crate) hint: Option<String>,
}

impl HoldReport {
    /// The failure as an error, for the one error printer.
    pub(crate) fn error(&self) -> lava_v1_core::Error {
        match &self.hint {
            Some(hint) => lava_v1_core::Error::refused_with_hint(&self.message, hint),
            None => lava_v1_core::Error::refused(&self.message),
        }
    }
}

fn run(hold: bool) -> HoldReport {
    let (op, verb) = if hold { (AptMarkOp::Hold, "hold") } else { (AptMarkOp::Unhold, "unhold") };
    if in_maintainer_script() {
        return HoldReport {
            ok: false,
            message: format!(
                "cannot run `apt-mark {verb} {PACKAGE}` from inside a maintainer script: dpkg holds its lock while scripts run"
            ),
            hint: Some(format!("run `apt-mark {verb} {PACKAGE}` once apt or dpkg has finished")),
        };
    }
    match apt_mark(op, PACKAGE) {
        Ok(AptMarkOutcome::Held) => ok(format!(
            "{PACKAGE} is now on hold: apt will not upgrade it (your V1 data stays). Undo with `lava-v1 unhold`."
        )),
        Ok(AptMarkOutcome::AlreadyHeld) => ok(format!("{PACKAGE} was already on hold.")),
        Ok(AptMarkOutcome::Unheld) => ok(format!(
            "{PACKAGE} is no longer on hold: the next upgrade will ask whether to remove the V1 data."
        )),
        Ok(AptMarkOutcome::AlreadyNotHeld) => ok(format!("{PACKAGE} was not on hold.")),
        Ok(AptMarkOutcome::ShowHold { held }) => ok(format!("{PACKAGE} on hold: {held}")),
        Ok(AptMarkOutcome::Other { stdout }) => ok(format!("apt-mark {verb} {PACKAGE}: {}", stdout.trim())),
        Ok(AptMarkOutcome::Failed { command, status, stderr }) => HoldReport {
            ok: false,
            message: format!("`{command}` failed ({status}):\n{}", stderr.trim_end()),
            hint: None,
        },
        Err(e) => HoldReport {
            ok: false,
            message: format!("cannot run apt-mark: {}", lava_v1_core::explain::one_line(&e)),
            hint: None,
        },
    }
}

fn ok(message: String) -> HoldReport {
    HoldReport { ok: true, message, hint: None }
}

/// `lava-v1 hold` (true) or `unhold` (false), told to the admin.
pub(crate) fn command(hold_it: bool) -> ExitCode {
    let report = run(hold_it);
    if report.ok {
        let _ = writeln!(std::io::stdout().lock(), "{}", report.message);
        ExitCode::SUCCESS
    } else {
        render::error(&report.error());
        ExitCode::FAILURE
    }
}
