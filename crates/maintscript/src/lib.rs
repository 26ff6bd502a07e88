//! dpkg plumbing for the lava-server V1-removal maintainer scripts.
//!
//! * [`args`]: the maintainer-script call forms of Debian Policy ch. 6
//!   ([`parse`] → [`Action`]), with the full summary in its docs.
//! * [`version`]: [`Version`], a Debian version with dpkg ordering, and
//!   [`is_before`] ("an upgrade from a version before 2017.12").
//! * [`root`]: [`Root`], `DPKG_ROOT`-relative paths that `..` cannot escape.
//! * [`env`](mod@env): the `DPKG_*` environment ([`MaintscriptEnv`],
//!   [`in_maintainer_script`]).
//! * [`dpkg_query`]: package state via `dpkg-query`, version comparison via
//!   `dpkg`, `dpkg-query -W` and `dpkg -C` for a bug report, and `apt-mark
//!   hold|unhold|showhold`.
//!
//! Nothing here prints to stdout (under debconf, stdout can be the command
//! pipe); diagnostics go through the `log` crate, and every error that comes
//! from a program names the command line.
//!
//! ```
//! use std::ffi::OsString;
//! use lava_v1_maintscript::{parse, Action, PreinstAction, Script};
//!
//! let argv: Vec<OsString> = ["upgrade", "2017.10-1", "2017.12-1"].map(Into::into).to_vec();
//! let action = parse(Script::Preinst, &argv).unwrap();
//! let Action::Preinst(PreinstAction::Upgrade { old, .. }) = &action else { panic!() };
//! assert!(lava_v1_maintscript::is_before(old, "2017.12").unwrap());
//!
//! let err = parse(Script::Preinst, &["frobnicate".into()]).unwrap_err();
//! assert!(err.to_string().starts_with("preinst: unknown call form: preinst \"frobnicate\""));
//! ```

pub mod args;
pub mod dpkg_query;
pub mod env;
mod error;
pub mod root;
pub mod version;

pub use args::{
    parse, Action, ConfigAction, PackageVersion, PostinstAction, PostrmAction, PreinstAction, PrermAction,
    Script,
};
pub use dpkg_query::{apt_mark, transcript, AptMark, AptMarkOp, AptMarkOutcome, DpkgQuery, PackageStatus};
pub use env::{in_maintainer_script, MaintscriptEnv};
pub use error::{Error, Result};
pub use root::Root;
pub use version::{is_before, upgrade_from_before, Version, V1_REMOVAL_RELEASE};
