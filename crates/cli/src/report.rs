//! `lava-v1 report`: logs, versions, debconf answers and the V1 status in
//! one file for a bug report, passwords masked; the packaging sections
//! come from dpkg and debconf through `lava-v1-maintscript`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use lava_v1_core::config::Paths;
use lava_v1_core::{report, Error};
use lava_v1_maintscript::{transcript, DpkgQuery};

/// Options of `lava-v1 report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Write the report here instead of the state directory.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// apt's log directory.
    #[arg(long, value_name = "DIR", default_value = "/var/log/apt")]
    apt_log_dir: PathBuf,
}

pub(crate) fn run(paths: &Paths, args: ReportArgs) -> Result<ExitCode, Error> {
    let sources = report::Sources {
        apt_log_dir: args.apt_log_dir,
        packaging: packaging(),
        ..report::Sources::default()
    };
    let path = report::write(paths, &sources, args.output.as_deref())?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "Report written (passwords masked). Attach it to your message to the lava-users mailing list:"
    );
    let _ = writeln!(std::io::stdout().lock(), "{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The report's sections from the packaging system: package versions,
/// dpkg's audit and the debconf answers.
fn packaging() -> Vec<report::Section> {
    let dpkg = DpkgQuery::new();
    let section = |title: &str, body: String| report::Section { title: title.to_owned(), body };
    vec![
        section("packages", dpkg.list(&["lava-*", "postgresql*", "python*-django"])),
        section("dpkg audit (dpkg -C)", dpkg.audit()),
        section(
            "debconf answers (debconf-show lava-server)",
            transcript(Path::new("debconf-show"), &["lava-server".to_owned()]),
        ),
    ]
}
