//! lava-server's `preinst` (a compiled program: it runs before the package
//! is unpacked, so it is the control-area file itself).  See
//! `lava_v1_gate::preinst`, and `lava_v1_gate::conffiles` for the
//! `rm_conffile` step it makes once the gate has let the upgrade go on.

use std::process::ExitCode;

use lava_v1_debconf::{Debconf, PROTOCOL_VERSION};
use lava_v1_gate::{conffiles, finish, init_logging, preinst, Context, Verdict};
use lava_v1_maintscript::args::parse_preinst_args;
use lava_v1_maintscript::PreinstAction;

fn main() -> ExitCode {
    init_logging();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = (|| {
        let action = parse_preinst_args(&args)?;
        let verdict = gate(&action)?;
        // Only an upgrade (or install) that goes on touches the obsolete
        // conffiles; a stopped one leaves them exactly as they were.
        if verdict.code == 0 && !matches!(action, PreinstAction::AbortUpgrade { .. }) {
            conffiles::prepare_removal(&args)?;
        }
        Ok(verdict)
    })();
    finish("preinst", result)
}

fn gate(action: &PreinstAction) -> lava_v1_gate::Result<Verdict> {
    let Some((old, new)) = preinst::gated(action)? else {
        return Ok(Verdict::ok());
    };
    let ctx = Context::from_env();
    let presence = preinst::presence(&ctx);
    if !presence.needs_decision() {
        return preinst::record_no_v1_data(&ctx, &old, new.as_ref());
    }
    // Starts the debconf frontend if none runs yet; the frontend runs
    // `config` first, which asks the question because this tells it what
    // was found, and then this program again from the start.
    std::env::set_var(preinst::FOUND_ENV, presence.details());
    let mut dc = Debconf::connect()?;
    dc.version(PROTOCOL_VERSION)?;
    preinst::decide(&ctx, &old, new.as_ref(), &presence, &mut dc)
}
