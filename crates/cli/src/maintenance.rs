//! `lava-v1 maintenance on|off|status`: the holding page that answers every
//! URL of the instance with 503 while the upgrade runs (see
//! `lava_v1_holdpage`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use lava_v1_core::config::Paths;
use lava_v1_holdpage::{self as holdpage, Error, OffOutcome, OnOutcome, Options, State, Status};

/// Options of `lava-v1 maintenance`.
#[derive(Debug, Args)]
pub(crate) struct MaintenanceArgs {
    #[command(subcommand)]
    action: Action,
    /// Apache's configuration root.
    #[arg(long, global = true, value_name = "DIR", default_value = holdpage::DEFAULT_APACHE_ROOT)]
    apache_root: PathBuf,
    /// Apache's control program (run with `configtest` and `graceful`, with APACHE_CONFDIR set to --apache-root).
    #[arg(long, global = true, value_name = "PROGRAM", default_value = holdpage::DEFAULT_APACHECTL)]
    apachectl: PathBuf,
    /// The Apache site to replace (sites-available/<SITE>.conf).
    #[arg(long, global = true, value_name = "SITE", default_value = holdpage::DEFAULT_SITE)]
    site: String,
    /// Where the holding page is written.
    #[arg(long, global = true, value_name = "DIR", default_value = holdpage::DEFAULT_PAGE_DIR)]
    page_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Replace the site with a holding page: every URL answers 503 with
    /// Retry-After and a short "upgrade in progress" page; reloads Apache.
    On {
        /// <VirtualHost> address for the holding page (repeatable), instead
        /// of the site's own, e.g. `*:80`.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Vec<String>,
        /// ServerName for the holding page, instead of the site's own.
        #[arg(long, value_name = "NAME")]
        server_name: Option<String>,
        /// Seconds clients are told to wait (Retry-After; the page reloads itself then).
        #[arg(long, value_name = "SECONDS", default_value_t = holdpage::DEFAULT_RETRY_AFTER,
              value_parser = clap::value_parser!(u32).range(1..))]
        retry_after: u32,
    },
    /// Put the site back exactly as `on` found it, remove the holding page,
    /// and reload Apache.
    Off,
    /// Say whether the holding page is on (read-only).
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(paths: &Paths, args: MaintenanceArgs) -> Result<ExitCode, Error> {
    let mut opts = Options {
        apache_root: args.apache_root,
        apachectl: args.apachectl,
        site: args.site,
        page_dir: args.page_dir,
        state_dir: paths.state_dir.clone(),
        ..Options::default()
    };
    let mut out = std::io::stdout().lock();
    let text = match args.action {
        Action::On { listen, server_name, retry_after } => {
            opts.listen = listen;
            opts.server_name = server_name;
            opts.retry_after = retry_after;
            on_text(&opts, &holdpage::on(&opts)?)
        }
        Action::Off => off_text(&opts, &holdpage::off(&opts)?),
        Action::Status { json } => {
            let status = holdpage::status(&opts)?;
            if json {
                serde_json::to_string_pretty(&status).expect("status serialises") + "\n"
            } else {
                status_text(&opts, &status)
            }
        }
    };
    let _ = out.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn on_text(opts: &Options, o: &OnOutcome) -> String {
    let mut s = String::new();
    match o {
        OnOutcome::Enabled { disabled_sites, enabled_modules, addresses, holding_file, retry_after } => {
            let _ = writeln!(
                s,
                "maintenance on: every URL of the {} site now answers 503 with the holding page (Retry-After: {retry_after} s)",
                opts.site
            );
            let where_ = if addresses.is_empty() { "server level".to_owned() } else { addresses.join(", ") };
            let _ = writeln!(s, "  holding site: {} ({where_})", holding_file.display());
            if !disabled_sites.is_empty() {
                let _ =
                    writeln!(s, "  disabled:     sites-enabled/{}", disabled_sites.join(", sites-enabled/"));
            }
            if !enabled_modules.is_empty() {
                let _ = writeln!(s, "  enabled:      mod_{}", enabled_modules.join(", mod_"));
            }
            let _ =
                writeln!(s, "  Apache checked and reloaded; `lava-v1 maintenance off` puts everything back.");
        }
        OnOutcome::AlreadyOn { since } => {
            let _ = writeln!(s, "maintenance is already on (since {since}); nothing changed.");
        }
    }
    s
}

fn off_text(opts: &Options, o: &OffOutcome) -> String {
    match o {
        OffOutcome::Restored { restored_sites, disabled_modules, since } => {
            let mut s = format!(
                "maintenance off: the {} site is back (sites-enabled/{}); it had been on since {since}\n",
                opts.site,
                restored_sites.join(", sites-enabled/")
            );
            if !disabled_modules.is_empty() {
                let _ = writeln!(s, "  disabled again: mod_{}", disabled_modules.join(", mod_"));
            }
            s.push_str("  the holding page is gone; Apache checked and reloaded.\n");
            s
        }
        OffOutcome::AlreadyOff => "maintenance is not on; nothing changed.\n".to_owned(),
    }
}

fn status_text(opts: &Options, st: &Status) -> String {
    let mut s = String::new();
    match &st.state {
        State::Off => {
            let _ = writeln!(s, "maintenance: off");
            if st.site_enabled.is_empty() {
                let _ = writeln!(
                    s,
                    "the {} site is not enabled in {}",
                    opts.site,
                    st.apache_root.join("sites-enabled").display()
                );
            } else {
                let _ = writeln!(
                    s,
                    "the {} site is enabled: sites-enabled/{}",
                    opts.site,
                    st.site_enabled.join(", sites-enabled/")
                );
            }
        }
        State::On => {
            let _ = writeln!(s, "maintenance: on since {}", st.since.as_deref().unwrap_or("?"));
            let _ = writeln!(s, "every URL of the {} site answers 503 with the holding page", opts.site);
        }
        State::Inconsistent(why) => {
            let _ = writeln!(
                s,
                "maintenance: inconsistent{}",
                st.since.as_ref().map(|t| format!(" (on since {t})")).unwrap_or_default()
            );
            for w in why {
                let _ = writeln!(s, "  - {w}");
            }
            let _ = writeln!(
                s,
                "`lava-v1 maintenance on` completes the switch; `lava-v1 maintenance off` undoes it."
            );
        }
    }
    if !st.disabled_sites.is_empty() {
        let _ = writeln!(s, "off will put back:");
        for l in &st.disabled_sites {
            let _ = writeln!(s, "  sites-enabled/{} -> {}", l.name, l.target.display());
        }
    }
    if !st.enabled_modules.is_empty() {
        let _ = writeln!(s, "off will disable again: mod_{}", st.enabled_modules.join(", mod_"));
    }
    s
}
