//! lava-server's `postinst` program, run by the shell postinst (which
//! carries debhelper's snippets).  See `lava_v1_gate::postinst`.

use std::process::ExitCode;

use lava_v1_core::drop::DropOptions;
use lava_v1_debconf::{Debconf, PROTOCOL_VERSION};
use lava_v1_gate::progress::{DebconfBar, Progress, Silent};
use lava_v1_gate::{finish, init_logging, postinst, Context};
use lava_v1_maintscript::args::parse_postinst_args;

/// A debconf progress bar when a frontend is already running (the shell
/// postinst loaded the confmodule); never starts one itself.
fn progress() -> Box<dyn Progress> {
    if std::env::var_os("DEBIAN_HAS_FRONTEND").is_some_and(|v| !v.is_empty()) {
        match Debconf::connect().and_then(|mut dc| dc.version(PROTOCOL_VERSION).map(|_| dc)) {
            Ok(dc) => return Box::new(DebconfBar::new(dc)),
            Err(e) => log::warn!("no debconf progress bar: {e}"),
        }
    }
    Box::new(Silent)
}

fn main() -> ExitCode {
    init_logging();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = (|| {
        let action = parse_postinst_args(&args)?;
        postinst::run(&Context::from_env(), &action, &DropOptions::default(), progress().as_mut())
    })();
    finish("postinst", result)
}
