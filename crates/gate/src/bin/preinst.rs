//! lava-server's `preinst` (a compiled program: it runs before the package
//! is unpacked, so it is the control-area file itself).  See
//! `lava_v1_gate::preinst`.

use std::process::ExitCode;

use lava_v1_debconf::{Debconf, PROTOCOL_VERSION};
use lava_v1_gate::{finish, init_logging, preinst, Context, Verdict};
use lava_v1_maintscript::args::parse_preinst_args;

fn main() -> ExitCode {
    init_logging();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = (|| {
        let action = parse_preinst_args(&args)?;
        let Some((old, new)) = preinst::gated(&action)? else {
            return Ok(Verdict::ok());
        };
        let ctx = Context::from_env();
        let presence = preinst::presence(&ctx);
        if !presence.needs_decision() {
            return preinst::record_no_v1_data(&ctx, &old, new.as_ref());
        }
        // Starts the debconf frontend if none runs yet; the frontend runs
        // `config` first and then this program again from the start.
        let mut dc = Debconf::connect()?;
        dc.version(PROTOCOL_VERSION)?;
        preinst::decide(&ctx, &old, new.as_ref(), &presence, &mut dc)
    })();
    finish("preinst", result)
}
