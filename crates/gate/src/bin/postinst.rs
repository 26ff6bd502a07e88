//! lava-server's `postinst`.  See `lava_v1_gate::postinst`.

use std::process::ExitCode;

use lava_v1_core::drop::DropOptions;
use lava_v1_gate::{finish, init_logging, postinst, Context};
use lava_v1_maintscript::args::parse_postinst_args;

fn main() -> ExitCode {
    init_logging();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = (|| {
        let action = parse_postinst_args(&args)?;
        postinst::run(&Context::from_env(), &action, &DropOptions::default())
    })();
    finish("postinst", result)
}
