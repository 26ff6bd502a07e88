//! `config`: asks `lava-server/removev1` when, and only when, it matters.
//!
//! Debian Policy / debconf-devel(7) call forms: `config configure
//! OLD-VERSION` (empty on a first install), `config reconfigure VERSION`.
//! It runs up to three times in one apt upgrade (dpkg-preconfigure, from
//! the preinst, from the postinst), so it must be idempotent, and it runs
//! before the package is unpacked, so it relies on nothing but Essential.
//! It never acts; it only asks.

use std::io::{BufRead, Write};

use lava_v1_debconf::{Debconf, Priority};
use lava_v1_maintscript::{upgrade_from_before, ConfigAction, V1_REMOVAL_RELEASE};

use crate::presence::{self, Presence};
use crate::{Context, Result, Verdict, QUESTION};

/// Runs the config script's logic over an open debconf connection.
pub fn run<R: BufRead, W: Write>(
    ctx: &Context,
    action: &ConfigAction,
    dc: &mut Debconf<R, W>,
) -> Result<Verdict> {
    let old = match action {
        ConfigAction::Configure { most_recently_configured } => most_recently_configured.as_ref(),
        ConfigAction::Reconfigure { version } => Some(version),
    };
    if !upgrade_from_before(old, V1_REMOVAL_RELEASE)? {
        log::debug!("config: not an upgrade from before {V1_REMOVAL_RELEASE}; nothing to ask");
        return Ok(Verdict::ok());
    }
    let presence = presence::check(ctx);
    if let Presence::None = presence {
        log::info!("config: no V1 data found; not asking {QUESTION}");
        return Ok(Verdict::ok());
    }
    dc.subst(QUESTION, "details", &presence.details())?;
    // Shown unless seen (answered before in this upgrade, or preseeded) or
    // hidden by the priority/frontend; the preinst handles every outcome.
    let input = dc.input(Priority::High, QUESTION)?;
    log::debug!("config: INPUT {QUESTION}: {input:?}");
    dc.go()?;
    Ok(Verdict::ok())
}
