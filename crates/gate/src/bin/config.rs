//! lava-server's debconf `config` script (a compiled program: it runs
//! before the package is unpacked, so it is the control-area file itself).
//! See `lava_v1_gate::config`.

use std::process::ExitCode;

use lava_v1_debconf::{Debconf, PROTOCOL_VERSION};
use lava_v1_gate::{config, finish, init_logging, Context};
use lava_v1_maintscript::args::parse_config_args;

fn main() -> ExitCode {
    init_logging();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = (|| {
        let action = parse_config_args(&args)?;
        let mut dc = Debconf::connect()?;
        dc.version(PROTOCOL_VERSION)?;
        config::run(&Context::from_env(), &action, &mut dc)
    })();
    finish("config", result)
}
