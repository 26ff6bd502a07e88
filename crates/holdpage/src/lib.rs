//! The maintenance holding page: while the V1 data goes, every URL of the
//! LAVA instance answers `503 Service Unavailable` with a `Retry-After`
//! header and a short page saying an upgrade is in progress (the upstream
//! page's "temporary holding page for all URLs related to the instance").
//!
//! # How, the Debian way
//!
//! LAVA's package ships its Apache site as
//! `/etc/apache2/sites-available/lava-server.conf`, enabled by `a2ensite` as
//! a symbolic link in `sites-enabled`.  [`on`] writes a second site,
//! `sites-available/lava-server-maintenance.conf` (generated from the
//! original's `<VirtualHost>` addresses, `ServerName`/`ServerAlias` and TLS
//! directives, so it answers on exactly the same names and ports), and the
//! page under [`DEFAULT_PAGE_DIR`]; then, as `a2ensite`/`a2dissite`/`a2enmod`
//! would, it links the holding site and the modules it needs (`rewrite`,
//! `headers`) and removes every `sites-enabled` entry of the lava-server
//! site.  [`off`] undoes exactly what `on` did.
//!
//! What `on` changed is recorded, before it changes anything, in the state
//! directory (`<state-dir>/maintenance`, JSON, mode 0600): the links it
//! removed (name and target, verbatim), the module links and the files and
//! directories it created.  So `off` restores the admin's tree exactly, a
//! rerun of `on` is a no-op (or completes an interrupted run, or disables
//! the site again if a package re-enabled it meanwhile), and a crash at
//! any point leaves something the next `on` or `off` finishes.
//!
//! Apache is checked with `apachectl configtest` before anything changes
//! and again with the new configuration in place; if either fails, every
//! change is undone and nothing reloads.  Then `apachectl graceful`
//! reloads it.  `APACHE_CONFDIR` is set to the configuration root for
//! every `apachectl` call, so a private instance (Debian's multi-instance
//! layout, or a test's) is handled exactly like `/etc/apache2`.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use lava_v1_core::state::{utc_now, StateDir};

mod error;
pub use error::{Error, Result};

/// Apache's configuration root on Debian.
pub const DEFAULT_APACHE_ROOT: &str = "/etc/apache2";
/// Debian's Apache control program.
pub const DEFAULT_APACHECTL: &str = "apache2ctl";
/// The name of LAVA's Apache site (`sites-available/lava-server.conf`).
pub const DEFAULT_SITE: &str = "lava-server";
/// Where the holding page is written (readable by Apache's user).
pub const DEFAULT_PAGE_DIR: &str = "/var/lib/lava-server/maintenance";
/// The holding page's file name, and its URL path.
pub const PAGE_NAME: &str = "lava-maintenance.html";
/// The default `Retry-After`, in seconds.
pub const DEFAULT_RETRY_AFTER: u32 = 600;
/// The modules the holding site needs.
pub const MODULES: [&str; 2] = ["rewrite", "headers"];

/// The record of what `on` changed, in the state directory.
const RECORD: &str = "maintenance";
/// Serialises `on` and `off` (separate from the drop's lock, so the
/// postinst can hold that one while it switches the page on).
const LOCK: &str = "maintenance.lock";
/// The first line of every holding site we write; a file without it is
/// not ours and is never overwritten.
const HEADER: &str = "# Written by `lava-v1 maintenance on`";
const PAGE_TEMPLATE: &str = include_str!("../assets/maintenance-page.html");

/// Where everything is, and how the holding page answers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Apache's configuration root (`/etc/apache2`).
    pub apache_root: PathBuf,
    /// Apache's control program, run with `configtest` and `graceful`.
    pub apachectl: PathBuf,
    /// The site to replace (`lava-server`).
    pub site: String,
    /// Where the page goes; created if missing, readable by everyone.
    pub page_dir: PathBuf,
    /// The state directory (the record and the journal live there).
    pub state_dir: PathBuf,
    /// `<VirtualHost>` addresses for the holding site, instead of the
    /// original site's (e.g. `*:80`).
    pub listen: Vec<String>,
    /// `ServerName` for the holding site, instead of the original's.
    pub server_name: Option<String>,
    /// Seconds for `Retry-After` (and the page's own reload).
    pub retry_after: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            apache_root: DEFAULT_APACHE_ROOT.into(),
            apachectl: DEFAULT_APACHECTL.into(),
            site: DEFAULT_SITE.into(),
            page_dir: DEFAULT_PAGE_DIR.into(),
            state_dir: lava_v1_core::config::DEFAULT_STATE_DIR.into(),
            listen: Vec::new(),
            server_name: None,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

impl Options {
    fn sites_available(&self) -> PathBuf {
        self.apache_root.join("sites-available")
    }
    fn sites_enabled(&self) -> PathBuf {
        self.apache_root.join("sites-enabled")
    }
    /// `sites-available/<site>.conf`.
    pub fn site_file(&self) -> PathBuf {
        self.sites_available().join(format!("{}.conf", self.site))
    }
    /// The holding site's name (`lava-server-maintenance`).
    pub fn holding_site(&self) -> String {
        format!("{}-maintenance", self.site)
    }
    /// `sites-available/<site>-maintenance.conf`.
    pub fn holding_file(&self) -> PathBuf {
        self.sites_available().join(format!("{}.conf", self.holding_site()))
    }
    fn holding_link(&self) -> Link {
        let name = format!("{}.conf", self.holding_site());
        Link { target: Path::new("../sites-available").join(&name), name }
    }
    /// The holding page file.
    pub fn page_file(&self) -> PathBuf {
        self.page_dir.join(PAGE_NAME)
    }
    /// The record of what `on` changed.
    pub fn record_file(&self) -> PathBuf {
        self.state_dir.join(RECORD)
    }
}

/// A symbolic link in `sites-enabled` or `mods-enabled`: its name there and
/// its target, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The entry's name.
    pub name: String,
    /// What it points at, as written in the link.
    pub target: PathBuf,
}

/// What `on` changed, so that `off` can undo exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    format: u32,
    /// When maintenance began.
    since: String,
    /// The configuration root it applies to.
    apache_root: PathBuf,
    /// The site replaced.
    site: String,
    /// `sites-enabled` entries of the site that `on` removed.
    disabled_sites: Vec<Link>,
    /// `mods-enabled` links that `on` created.
    enabled_modules: Vec<Link>,
    /// Files and directories `on` created, in creation order.
    created: Vec<PathBuf>,
    /// Whether Apache was reloaded after the last change.
    reloaded: bool,
}

/// What `on` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OnOutcome {
    /// The holding page is now served (or an interrupted switch was
    /// completed).
    Enabled {
        /// `sites-enabled` entries removed by this run.
        disabled_sites: Vec<String>,
        /// Modules enabled by this run.
        enabled_modules: Vec<String>,
        /// The holding site's `<VirtualHost>` addresses (empty: server level).
        addresses: Vec<String>,
        /// The holding site file.
        holding_file: PathBuf,
        /// `Retry-After`, in seconds.
        retry_after: u32,
    },
    /// It already was; nothing changed and Apache was not touched.
    AlreadyOn {
        /// When maintenance began.
        since: String,
    },
}

/// What `off` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OffOutcome {
    /// The site is back as it was.
    Restored {
        /// `sites-enabled` entries put back.
        restored_sites: Vec<String>,
        /// Modules disabled again (those `on` had enabled).
        disabled_modules: Vec<String>,
        /// When maintenance had begun.
        since: String,
    },
    /// Maintenance was not on; nothing changed.
    AlreadyOff,
}

/// Where maintenance stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not on: the site is as the admin left it.
    Off,
    /// On: only the holding site answers, and Apache was reloaded.
    On,
    /// Half way, or changed behind our back; the reasons say how.
    /// `lava-v1 maintenance on` completes it, `off` undoes it.
    Inconsistent(Vec<String>),
}

/// The read-only status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The overall state.
    pub state: State,
    /// When maintenance began, if on.
    pub since: Option<String>,
    /// The configuration root.
    pub apache_root: PathBuf,
    /// `sites-enabled` entries of the site right now.
    pub site_enabled: Vec<String>,
    /// Whether the holding site is enabled.
    pub holding_enabled: bool,
    /// `sites-enabled` entries `off` will put back.
    pub disabled_sites: Vec<Link>,
    /// Modules `off` will disable again.
    pub enabled_modules: Vec<String>,
    /// The record file.
    pub record_file: PathBuf,
}

/// Switches the holding page on, if the site is enabled: what the
/// package's postinst calls before the drop.  `None` when the site is not
/// enabled (Apache does not serve this instance, or not through this
/// site): then nothing changed.  An interrupted or already-on maintenance
/// is completed or left as it is.
pub fn enable_if_site_enabled(opts: &Options) -> Result<Option<OnOutcome>> {
    let recorded = load_record(opts)?.is_some();
    if !recorded && site_entries(opts)?.is_empty() {
        log::info!(
            "the {} Apache site is not enabled in `{}`: no holding page needed",
            opts.site,
            opts.sites_enabled().display()
        );
        return Ok(None);
    }
    on(opts).map(Some)
}

/// Replaces the site with the holding page and reloads Apache.
pub fn on(opts: &Options) -> Result<OnOutcome> {
    let _lock = lock(opts)?;
    let run = SwitchOn::read(opts)?;
    run.check_something_to_replace()?;
    let plan = run.plan()?;
    if let Some(rec) = run.already_on(&plan) {
        log::info!("maintenance is already on (since {}); nothing to do", rec.since);
        return Ok(OnOutcome::AlreadyOn { since: rec.since.clone() });
    }
    configtest(
        opts,
        "before switching to the holding page",
        "fix Apache's configuration first (see `apache2ctl configtest`), then run the same command again",
    )?;
    let recorded = run.record(&plan)?;
    let switched = run
        .write_and_switch(&plan, &recorded.new_dirs)
        .and_then(|()| {
            configtest(
                opts,
                "with the holding page in place",
                "the holding page needs mod_rewrite and mod_headers and the site's own addresses; fix what the output names (or choose addresses with --listen / --server-name), then run the same command again",
            )
        })
        .and_then(|()| reload(opts));
    if let Err(e) = switched {
        run.undo(&plan, &recorded.new_dirs);
        return Err(e);
    }
    run.finish(plan, recorded.record)
}

/// One `maintenance on`: what was found before anything changes.
struct SwitchOn<'a> {
    opts: &'a Options,
    /// The record of an earlier (maybe interrupted) `on`.
    previous: Option<Record>,
    /// The site's `sites-enabled` entries, which this run removes.
    live: Vec<Link>,
    /// The holding site's link in `sites-enabled`, as `on` writes it.
    holding_link: Link,
    /// Where that link goes.
    holding_link_path: PathBuf,
}

/// What `on` will write and enable, worked out before anything changes.
struct OnPlan {
    /// The original site's text, which the holding site copies its
    /// addresses and names from.
    original: String,
    /// The holding site's configuration.
    conf: String,
    /// The holding page.
    page: String,
    /// Where the holding site goes.
    holding_file: PathBuf,
    /// Where the page goes.
    page_file: PathBuf,
    /// The holding site file as it was (ours, from an earlier run), if any.
    old_conf: Option<Vec<u8>>,
    /// The page as it was, if any.
    old_page: Option<Vec<u8>>,
    /// The module links to create.
    modules: Vec<Link>,
    /// Whether the holding site's link is still to be created.
    needs_link: bool,
}

/// The record `on` saved before changing anything.
struct Recorded {
    /// The record, not yet marked reloaded.
    record: Record,
    /// The page's missing directories, outermost first, which `on` creates.
    new_dirs: Vec<PathBuf>,
}

impl<'a> SwitchOn<'a> {
    /// The record of an earlier run, checked, and the site's entries now.
    fn read(opts: &'a Options) -> Result<Self> {
        let previous = load_record(opts)?;
        if let Some(rec) = &previous {
            check_record(opts, rec)?;
        }
        let live = site_entries(opts)?;
        let holding_link = opts.holding_link();
        let holding_link_path = opts.sites_enabled().join(&holding_link.name);
        Ok(SwitchOn { opts, previous, live, holding_link, holding_link_path })
    }

    /// Refuses when the site is not enabled and no earlier run disabled it.
    fn check_something_to_replace(&self) -> Result<()> {
        let opts = self.opts;
        if self.previous.is_some() || !self.live.is_empty() {
            return Ok(());
        }
        if is_symlink(&self.holding_link_path) {
            return Err(refuse(
                format!(
                    "the holding site `{}` is enabled but this tool has no record of switching it on (`{}` is missing)",
                    self.holding_link_path.display(),
                    opts.record_file().display()
                ),
                format!(
                    "it was not switched on by `lava-v1 maintenance on`; remove it with `a2dissite {}` and enable the {} site yourself",
                    opts.holding_site(),
                    opts.site
                ),
            ));
        }
        Err(refuse(
            format!("the {} Apache site is not enabled in `{}`: there is nothing to replace", opts.site, opts.sites_enabled().display()),
            "enable it (`a2ensite lava-server`), or name the site with --site / the configuration root with --apache-root".to_owned(),
        ))
    }

    /// What the holding site must look like, and what is there already;
    /// refuses to overwrite a holding site file that is not ours.
    fn plan(&self) -> Result<OnPlan> {
        let opts = self.opts;
        let source = match (self.live.first(), self.previous.as_ref().and_then(|r| r.disabled_sites.first()))
        {
            (Some(l), _) | (None, Some(l)) => resolve(&opts.sites_enabled(), &l.target),
            (None, None) => opts.site_file(),
        };
        let original = std::fs::read_to_string(&source).map_err(|e| file_err("read", &source, e))?;
        let conf = holding_site_config(opts, &source, &original);
        let page = holding_page(opts.retry_after);
        let holding_file = opts.holding_file();
        let page_file = opts.page_file();
        let old_conf = read_optional(&holding_file)?;
        if let Some(old) = &old_conf {
            if !old.starts_with(HEADER.as_bytes()) {
                return Err(refuse(
                    format!("`{}` exists and was not written by this tool", holding_file.display()),
                    "move it away (it is not LAVA's), then run the same command again; nothing was changed"
                        .to_owned(),
                ));
            }
        }
        let old_page = read_optional(&page_file)?;
        let modules = modules_to_enable(opts)?;
        let needs_link = !is_symlink(&self.holding_link_path);
        Ok(OnPlan { original, conf, page, holding_file, page_file, old_conf, old_page, modules, needs_link })
    }

    /// The earlier run's record, when it finished (Apache reloaded) and
    /// the plan changes nothing.
    fn already_on(&self, plan: &OnPlan) -> Option<&Record> {
        let changes = plan.old_conf.as_deref() != Some(plan.conf.as_bytes())
            || plan.old_page.as_deref() != Some(plan.page.as_bytes())
            || !plan.modules.is_empty()
            || plan.needs_link
            || !self.live.is_empty();
        if changes {
            return None;
        }
        self.previous.as_ref().filter(|r| r.reloaded)
    }

    /// Records what is about to change, before it changes: a crash from
    /// here on leaves a record that `on` or `off` can finish from.
    fn record(&self, plan: &OnPlan) -> Result<Recorded> {
        let opts = self.opts;
        let mut rec = self.previous.clone().unwrap_or_else(|| Record {
            format: 1,
            since: utc_now(),
            apache_root: opts.apache_root.clone(),
            site: opts.site.clone(),
            disabled_sites: Vec::new(),
            enabled_modules: Vec::new(),
            created: Vec::new(),
            reloaded: false,
        });
        for l in &self.live {
            if !rec.disabled_sites.iter().any(|d| d.name == l.name) {
                rec.disabled_sites.push(l.clone());
            }
        }
        for m in &plan.modules {
            if !rec.enabled_modules.contains(m) {
                rec.enabled_modules.push(m.clone());
            }
        }
        let new_dirs = missing_dirs(&opts.page_dir);
        for p in new_dirs
            .iter()
            .chain([&plan.page_file].into_iter().filter(|_| plan.old_page.is_none()))
            .chain([&plan.holding_file].into_iter().filter(|_| plan.old_conf.is_none()))
        {
            if !rec.created.contains(p) {
                rec.created.push(p.clone());
            }
        }
        rec.reloaded = false;
        save_record(opts, &rec)?;
        journal(opts, &format!("maintenance on: started (disabling {})", names(&self.live)));
        Ok(Recorded { record: rec, new_dirs })
    }

    /// Writes the page and the holding site, links the modules and the
    /// holding site, and removes the site's links; stops at the first
    /// failure.
    fn write_and_switch(&self, plan: &OnPlan, new_dirs: &[PathBuf]) -> Result<()> {
        let opts = self.opts;
        for dir in new_dirs {
            std::fs::DirBuilder::new().mode(0o755).create(dir).map_err(|e| file_err("create", dir, e))?;
        }
        write_file(&plan.page_file, plan.page.as_bytes())?;
        write_file(&plan.holding_file, plan.conf.as_bytes())?;
        let mods = opts.apache_root.join("mods-enabled");
        for m in &plan.modules {
            symlink(&m.target, &mods.join(&m.name))?;
        }
        if plan.needs_link {
            symlink(&self.holding_link.target, &self.holding_link_path)?;
        }
        for l in &self.live {
            remove_link(&opts.sites_enabled().join(&l.name), &l.target)?;
        }
        Ok(())
    }

    /// Undoes a half-done `on`, best effort (each failure is logged), and
    /// journals it.
    fn undo(&self, plan: &OnPlan, new_dirs: &[PathBuf]) {
        let opts = self.opts;
        let mut errors = Vec::new();
        let sites = opts.sites_enabled();
        for l in &self.live {
            let path = sites.join(&l.name);
            if path.symlink_metadata().is_err() {
                if let Err(e) = symlink(&l.target, &path) {
                    errors.push(e);
                }
            }
        }
        if plan.needs_link {
            let l = &self.holding_link;
            let _ = remove_link(&sites.join(&l.name), &l.target).map_err(|e| errors.push(e));
        }
        let mods = opts.apache_root.join("mods-enabled");
        for m in &plan.modules {
            let _ = remove_link(&mods.join(&m.name), &m.target).map_err(|e| errors.push(e));
        }
        for (path, old) in [(opts.holding_file(), &plan.old_conf), (opts.page_file(), &plan.old_page)] {
            let r = match old {
                Some(bytes) => write_file(&path, bytes),
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => Err(file_err("remove", &path, e)),
                    _ => Ok(()),
                },
            };
            let _ = r.map_err(|e| errors.push(e));
        }
        for dir in new_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        let r = match &self.previous {
            Some(rec) => save_record(opts, rec),
            None => match std::fs::remove_file(opts.record_file()) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(Error::Core(lava_v1_core::Error::State { path: opts.record_file(), source: e }))
                }
                _ => Ok(()),
            },
        };
        let _ = r.map_err(|e| errors.push(e));
        for e in &errors {
            log::error!("while undoing `maintenance on`: {e}");
        }
        journal(
            opts,
            &if errors.is_empty() {
                "maintenance on: FAILED, every change undone".to_owned()
            } else {
                format!("maintenance on: FAILED, and {} changes could not be undone", errors.len())
            },
        );
    }

    /// Apache serves the holding page: records that, and says what changed.
    fn finish(self, plan: OnPlan, mut rec: Record) -> Result<OnOutcome> {
        let opts = self.opts;
        rec.reloaded = true;
        save_record(opts, &rec)?;
        journal(
            opts,
            &format!("maintenance on: holding page served; disabled {}; Apache reloaded", names(&self.live)),
        );
        log::info!(
            "maintenance on: every URL of the {} site now answers 503 with the holding page",
            opts.site
        );
        Ok(OnOutcome::Enabled {
            disabled_sites: self.live.into_iter().map(|l| l.name).collect(),
            enabled_modules: plan
                .modules
                .iter()
                .filter(|m| m.name.ends_with(".load"))
                .map(|m| module_name(&m.name))
                .collect(),
            addresses: holding_addresses(opts, &plan.original),
            holding_file: plan.holding_file,
            retry_after: opts.retry_after,
        })
    }
}

/// Puts the site back exactly as `on` found it, removes the holding page,
/// and reloads Apache.
pub fn off(opts: &Options) -> Result<OffOutcome> {
    let _lock = lock(opts)?;
    let Some(run) = SwitchOff::read(opts)? else {
        log::info!("maintenance is not on; nothing to do");
        return Ok(OffOutcome::AlreadyOff);
    };
    let plan = run.plan()?;
    configtest(
        opts,
        "before switching back",
        "fix Apache's configuration first (see `apache2ctl configtest`), then run the same command again",
    )?;
    journal(opts, &format!("maintenance off: started (restoring {})", names(&run.rec.disabled_sites)));
    let mut done = OffChanges::default();
    let switched = run
        .switch_links(&plan, &mut done)
        .and_then(|()| {
            configtest(
                opts,
                "with the site put back",
                "the restored site does not pass Apache's check any more (did its configuration change during maintenance?); fix it, then run the same command again",
            )
        })
        .and_then(|()| reload(opts));
    if let Err(e) = switched {
        done.undo();
        journal(opts, &format!("maintenance off: FAILED, holding page kept: {e}"));
        return Err(e);
    }
    run.tidy()?;
    Ok(run.finish(plan))
}

/// One `maintenance off`: the record of what `on` changed, and where.
struct SwitchOff<'a> {
    opts: &'a Options,
    /// What `on` changed.
    rec: Record,
    /// `sites-enabled`.
    sites: PathBuf,
    /// `mods-enabled`.
    mods: PathBuf,
    /// The holding site's link in `sites-enabled`, as `on` wrote it.
    holding_link: Link,
    /// Where that link is.
    holding_link_path: PathBuf,
}

/// What `off` will change, worked out before anything changes.
struct OffPlan {
    /// The site's links to put back (those not back already).
    restore: Vec<Link>,
    /// The module links `on` created that are still there.
    unlink_mods: Vec<Link>,
    /// Whether the holding site's link is still there.
    unlink_holding: bool,
}

/// One link `off` changed: in `dir`, created (or else removed).
struct OffChange {
    dir: PathBuf,
    link: Link,
    created: bool,
}

/// The links `off` changed so far, in order, to put back if it fails.
#[derive(Default)]
struct OffChanges(Vec<OffChange>);

impl OffChanges {
    fn push(&mut self, dir: &Path, link: &Link, created: bool) {
        self.0.push(OffChange { dir: dir.to_owned(), link: link.clone(), created });
    }

    /// Reverts every change, last first, best effort (each failure is
    /// logged).
    fn undo(&self) {
        for OffChange { dir, link: l, created } in self.0.iter().rev() {
            let path = dir.join(&l.name);
            let r = if *created { remove_link(&path, &l.target) } else { symlink(&l.target, &path) };
            if let Err(e) = r {
                log::error!("could not undo a change to `{}`: {e}", path.display());
            }
        }
    }
}

impl<'a> SwitchOff<'a> {
    /// The record of what `on` changed, checked; `None` when maintenance
    /// is not on.  Refuses when the holding site is enabled without one.
    fn read(opts: &'a Options) -> Result<Option<Self>> {
        let holding_link = opts.holding_link();
        let holding_link_path = opts.sites_enabled().join(&holding_link.name);
        let Some(rec) = load_record(opts)? else {
            if is_symlink(&holding_link_path) {
                return Err(refuse(
                    format!(
                        "the holding site `{}` is enabled but there is no record of what it replaced (`{}` is missing)",
                        holding_link_path.display(),
                        opts.record_file().display()
                    ),
                    format!("put the site back yourself: `a2dissite {}` and `a2ensite {}`, then reload Apache", opts.holding_site(), opts.site),
                ));
            }
            return Ok(None);
        };
        check_record(opts, &rec)?;
        Ok(Some(SwitchOff {
            opts,
            rec,
            sites: opts.sites_enabled(),
            mods: opts.apache_root.join("mods-enabled"),
            holding_link,
            holding_link_path,
        }))
    }

    /// What to put back and what to remove, refusing on conflicts before
    /// anything changes.
    fn plan(&self) -> Result<OffPlan> {
        let mut restore = Vec::new();
        for l in &self.rec.disabled_sites {
            let path = self.sites.join(&l.name);
            let exists = path.symlink_metadata().is_ok();
            match std::fs::read_link(&path) {
                Ok(t) if t == l.target => {}
                _ if exists => {
                    return Err(refuse(
                        format!("`{}` was put back by something else, and differs from what `on` removed (`{}`)", path.display(), l.target.display()),
                        format!("remove it or make it the link `{}` -> `{}`, then run the same command again; nothing was changed", l.name, l.target.display()),
                    ));
                }
                _ => restore.push(l.clone()),
            }
        }
        let unlink_mods: Vec<Link> = self
            .rec
            .enabled_modules
            .iter()
            .filter(|m| std::fs::read_link(self.mods.join(&m.name)).is_ok_and(|t| t == m.target))
            .cloned()
            .collect();
        let unlink_holding =
            std::fs::read_link(&self.holding_link_path).is_ok_and(|t| t == self.holding_link.target);
        Ok(OffPlan { restore, unlink_mods, unlink_holding })
    }

    /// Puts the site's links back and removes the holding site's and the
    /// modules' links; stops at the first failure, with `done` saying
    /// what changed.
    fn switch_links(&self, plan: &OffPlan, done: &mut OffChanges) -> Result<()> {
        for l in &plan.restore {
            symlink(&l.target, &self.sites.join(&l.name))?;
            done.push(&self.sites, l, true);
        }
        if plan.unlink_holding {
            remove_link(&self.holding_link_path, &self.holding_link.target)?;
            done.push(&self.sites, &self.holding_link, false);
        }
        for m in &plan.unlink_mods {
            remove_link(&self.mods.join(&m.name), &m.target)?;
            done.push(&self.mods, m, false);
        }
        Ok(())
    }

    /// The site is back and Apache serves it: removes what `on` created
    /// (best effort, each failure logged), then the record.
    fn tidy(&self) -> Result<()> {
        for p in self.rec.created.iter().rev() {
            let r = match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir(p),
                Ok(_) => std::fs::remove_file(p),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    log::warn!("could not remove `{}`, which `maintenance on` created: {e}", p.display())
                }
            }
        }
        let record = self.opts.record_file();
        std::fs::remove_file(&record)
            .map_err(|e| Error::Core(lava_v1_core::Error::State { path: record, source: e }))
    }

    /// Journals the end, and says what changed.
    fn finish(self, plan: OffPlan) -> OffOutcome {
        let opts = self.opts;
        journal(
            opts,
            &format!("maintenance off: restored {}; Apache reloaded", names(&self.rec.disabled_sites)),
        );
        log::info!("maintenance off: the {} site is back", opts.site);
        OffOutcome::Restored {
            restored_sites: self.rec.disabled_sites.iter().map(|l| l.name.clone()).collect(),
            disabled_modules: plan
                .unlink_mods
                .iter()
                .filter(|m| m.name.ends_with(".load"))
                .map(|m| module_name(&m.name))
                .collect(),
            since: self.rec.since,
        }
    }
}

/// Where maintenance stands (read-only; runs no command).
pub fn status(opts: &Options) -> Result<Status> {
    let rec = load_record(opts)?;
    let site_enabled: Vec<String> = entries(opts)?.into_iter().map(|(name, _)| name).collect();
    let holding_path = opts.sites_enabled().join(opts.holding_link().name);
    let holding_enabled = holding_path.symlink_metadata().is_ok();
    let state = match &rec {
        None if !holding_enabled => State::Off,
        None => State::Inconsistent(vec![format!(
            "the holding site is enabled but `{}` is missing: it was not switched on by this tool",
            opts.record_file().display()
        )]),
        Some(r) => {
            let mut why = Vec::new();
            if r.apache_root != opts.apache_root {
                why.push(format!("the record is for `{}`", r.apache_root.display()));
            }
            if !holding_enabled {
                why.push("the holding site is not enabled".to_owned());
            }
            if !site_enabled.is_empty() {
                why.push(format!("the {} site is enabled again ({})", opts.site, site_enabled.join(", ")));
            }
            if !r.reloaded {
                why.push("Apache was not reloaded after the last change".to_owned());
            }
            if why.is_empty() {
                State::On
            } else {
                State::Inconsistent(why)
            }
        }
    };
    Ok(Status {
        state,
        since: rec.as_ref().map(|r| r.since.clone()),
        apache_root: opts.apache_root.clone(),
        site_enabled,
        holding_enabled,
        disabled_sites: rec.as_ref().map(|r| r.disabled_sites.clone()).unwrap_or_default(),
        enabled_modules: rec
            .as_ref()
            .map(|r| {
                r.enabled_modules
                    .iter()
                    .filter(|m| m.name.ends_with(".load"))
                    .map(|m| module_name(&m.name))
                    .collect()
            })
            .unwrap_or_default(),
        record_file: opts.record_file(),
    })
}

// ---------------------------------------------------------------------------
// Generating the holding site and page.

/// The holding page, for a `Retry-After` of `retry_after` seconds.
pub fn holding_page(retry_after: u32) -> String {
    PAGE_TEMPLATE
        .replace("@RETRY_SECONDS@", &retry_after.max(1).to_string())
        .replace("@RETRY_WORDS@", &retry_words(retry_after))
}

/// "in about 10 minutes", for people.
fn retry_words(secs: u32) -> String {
    match secs {
        0..=89 => "in a minute".to_owned(),
        90..=5399 => format!("in about {} minutes", secs.div_ceil(60)),
        _ => {
            let h = (secs + 1800) / 3600;
            format!("in about {h} hour{}", if h == 1 { "" } else { "s" })
        }
    }
}

/// One `<VirtualHost>` of the original site: its addresses and the
/// directives that give it its identity (names and TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
struct VHost {
    addresses: String,
    identity: Vec<String>,
}

/// The `<VirtualHost>` blocks of a site file.  Comments and continuation
/// lines are handled; identity directives are taken from the block's own
/// level only (not from `<Directory>` and the like inside it).
fn parse_vhosts(text: &str) -> Vec<VHost> {
    let mut out = Vec::new();
    let mut current: Option<VHost> = None;
    let mut depth = 0usize; // sections open inside the current vhost
    let mut logical = String::new();
    for raw in text.lines() {
        if let Some(stripped) = raw.strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("<virtualhost") {
            if rest.starts_with(char::is_whitespace) {
                let addrs = line["<virtualhost".len()..].trim().trim_end_matches('>').trim().to_owned();
                current = Some(VHost { addresses: addrs, identity: Vec::new() });
                depth = 0;
                continue;
            }
        }
        if lower.starts_with("</virtualhost") {
            if let Some(v) = current.take() {
                out.push(v);
            }
            continue;
        }
        let Some(v) = current.as_mut() else { continue };
        if lower.starts_with("</") {
            depth = depth.saturating_sub(1);
        } else if lower.starts_with('<') {
            depth += 1;
        } else if depth == 0 {
            let word = lower.split_whitespace().next().unwrap_or("");
            if word == "servername"
                || word == "serveralias"
                || (word.starts_with("ssl") && !word.starts_with("sslproxy"))
            {
                v.identity.push(line.to_owned());
            }
        }
    }
    out
}

fn holding_vhosts(opts: &Options, original: &str) -> Vec<VHost> {
    let name = opts.server_name.as_ref().map(|n| format!("ServerName {n}"));
    if !opts.listen.is_empty() {
        return vec![VHost { addresses: opts.listen.join(" "), identity: name.into_iter().collect() }];
    }
    let mut vhosts = parse_vhosts(original);
    if let Some(n) = &name {
        for v in &mut vhosts {
            v.identity.retain(|d| {
                let w = d.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                w != "servername" && w != "serveralias"
            });
            v.identity.insert(0, n.clone());
        }
    }
    vhosts
}

fn holding_addresses(opts: &Options, original: &str) -> Vec<String> {
    holding_vhosts(opts, original).into_iter().map(|v| v.addresses).collect()
}

fn quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The holding site's configuration.
fn holding_site_config(opts: &Options, source: &Path, original: &str) -> String {
    let dir = quote(&opts.page_dir);
    let body = format!(
        "DocumentRoot {dir}\n\
         <Directory {dir}>\n\
         \x20   Options None\n\
         \x20   AllowOverride None\n\
         \x20   Require all granted\n\
         </Directory>\n\
         FileETag None\n\
         AddDefaultCharset utf-8\n\
         ErrorDocument 503 /{PAGE_NAME}\n\
         # Every request, whatever its URL or method, is answered 503; the page\n\
         # itself is only ever served as that error document.\n\
         RewriteEngine On\n\
         RewriteCond %{{ENV:REDIRECT_STATUS}} ^$\n\
         RewriteRule ^ - [R=503,L]\n\
         Header always set Retry-After \"{retry}\"\n\
         Header always set Cache-Control \"no-store\"\n",
        retry = opts.retry_after,
    );
    let mut out = format!(
        "{HEADER} (lava-server 2017.12 upgrade).\n\
         # A holding page for every URL of the {site} site (`{source}`), which is\n\
         # disabled meanwhile.  `lava-v1 maintenance off` puts it back and removes\n\
         # this file; do not edit it: `lava-v1 maintenance on` rewrites it.\n",
        site = opts.site,
        source = source.display(),
    );
    let vhosts = holding_vhosts(opts, original);
    if vhosts.is_empty() {
        out.push('\n');
        out.push_str(&body);
    }
    for v in vhosts {
        out.push_str(&format!("\n<VirtualHost {}>\n", v.addresses));
        for line in v.identity.iter().map(String::as_str).chain(body.lines()) {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("</VirtualHost>\n");
    }
    out
}

// ---------------------------------------------------------------------------
// The Apache tree.

/// `sites-enabled` entries of the site: by name (`<site>.conf`), or as a
/// link to its file.  Returns each entry's name and link target (`None`
/// for a plain file).
fn entries(opts: &Options) -> Result<Vec<(String, Option<PathBuf>)>> {
    let dir = opts.sites_enabled();
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_err("read", &dir, e)),
    };
    let site_file = std::fs::canonicalize(opts.site_file()).ok();
    let own_name = format!("{}.conf", opts.site);
    let holding = opts.holding_link().name;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| file_err("read", &dir, e))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name == holding {
            continue;
        }
        let path = entry.path();
        let target = std::fs::read_link(&path).ok();
        let points_here = target.as_ref().is_some_and(|t| {
            site_file.is_some() && std::fs::canonicalize(resolve(&dir, t)).ok() == site_file
        });
        if name == own_name || points_here {
            out.push((name, target));
        }
    }
    out.sort();
    Ok(out)
}

/// The site's `sites-enabled` links; a plain file is refused (we only
/// move links, which `off` can put back verbatim).
fn site_entries(opts: &Options) -> Result<Vec<Link>> {
    entries(opts)?
        .into_iter()
        .map(|(name, target)| match target {
            Some(target) => Ok(Link { name, target }),
            None => Err(refuse(
                format!("`{}` is a plain file, not a link made by a2ensite", opts.sites_enabled().join(&name).display()),
                format!(
                    "move it to `{}` and run `a2ensite {}`, then run the same command again; nothing was changed",
                    opts.site_file().display(),
                    opts.site
                ),
            )),
        })
        .collect()
}

/// Module links to create, as `a2enmod` would (`.load`, and `.conf` when
/// there is one).
fn modules_to_enable(opts: &Options) -> Result<Vec<Link>> {
    let avail = opts.apache_root.join("mods-available");
    let enabled = opts.apache_root.join("mods-enabled");
    let mut out = Vec::new();
    for m in MODULES {
        let load = format!("{m}.load");
        if enabled.join(&load).symlink_metadata().is_ok() {
            continue;
        }
        if !avail.join(&load).exists() {
            return Err(refuse(
                format!("the holding page needs mod_{m}, and `{}` is missing", avail.join(&load).display()),
                "reinstall apache2 (it ships every module), then run the same command again; nothing was changed".to_owned(),
            ));
        }
        for ext in ["load", "conf"] {
            let name = format!("{m}.{ext}");
            if avail.join(&name).exists() && enabled.join(&name).symlink_metadata().is_err() {
                out.push(Link { target: Path::new("../mods-available").join(&name), name });
            }
        }
    }
    Ok(out)
}

fn module_name(file: &str) -> String {
    file.trim_end_matches(".load").to_owned()
}

/// A link target as seen from `dir`, normalised lexically.
fn resolve(dir: &Path, target: &Path) -> PathBuf {
    let joined = dir.join(target);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink())
}

fn symlink(target: &Path, path: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, path).map_err(|e| file_err("create the link", path, e))
}

/// Removes `path` if it is a link to `target`; never anything else.
fn remove_link(path: &Path, target: &Path) -> Result<()> {
    match std::fs::read_link(path) {
        Ok(t) if t == target => std::fs::remove_file(path).map_err(|e| file_err("remove", path, e)),
        Ok(_) => Err(refuse(
            format!("`{}` changed meanwhile (it no longer points at `{}`)", path.display(), target.display()),
            "check the Apache configuration tree; run the same command again once it is as expected"
                .to_owned(),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file_err("read the link", path, e)),
    }
}

/// The ancestors of `dir` (itself included) that do not exist, outermost
/// first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_err())
        .map(Path::to_owned)
        .collect();
    out.reverse();
    out
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_err("read", path, e)),
    }
}

/// Writes a world-readable file atomically (temporary file, then rename).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.lava-v1-tmp",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    ));
    let r = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err("write", path, e)
    })
}

fn file_err(doing: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::ApacheFile { doing, path: path.to_owned(), source }
}

fn refuse(reason: String, hint: String) -> Error {
    Error::Maintenance { reason, hint }
}

fn names(links: &[Link]) -> String {
    if links.is_empty() {
        "nothing".to_owned()
    } else {
        links.iter().map(|l| format!("{} -> {}", l.name, l.target.display())).collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------
// The state directory.

/// Creates the state directory (mode 0700, an existing one tightened;
/// missing parents get the usual 0755, so that the page directory beside
/// it stays reachable by Apache).
fn ensure_state_dir(opts: &Options) -> Result<()> {
    Ok(StateDir::new(&opts.state_dir).create()?)
}

fn lock(opts: &Options) -> Result<lava_v1_core::state::Lock> {
    ensure_state_dir(opts)?;
    Ok(StateDir::new(&opts.state_dir).lock_named(LOCK)?)
}

fn load_record(opts: &Options) -> Result<Option<Record>> {
    let path = opts.record_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Core(lava_v1_core::Error::ReadFile {
                path,
                what: "maintenance record",
                source,
            }))
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        refuse(
            format!("`{}` is not a maintenance record this tool can read: {e}", path.display()),
            "it says what `maintenance on` changed; restore it from the journal in the same directory, or undo those changes yourself and remove it".to_owned(),
        )
    })
}

fn save_record(opts: &Options, rec: &Record) -> Result<()> {
    ensure_state_dir(opts)?;
    let path = opts.record_file();
    let text = serde_json::to_string_pretty(rec).expect("the record serialises") + "\n";
    Ok(lava_v1_core::state::write_atomically(&path, text.as_bytes())?)
}

fn check_record(opts: &Options, rec: &Record) -> Result<()> {
    if rec.apache_root != opts.apache_root || rec.site != opts.site {
        return Err(refuse(
            format!(
                "maintenance is on for the {} site in `{}`, not the {} site in `{}`",
                rec.site,
                rec.apache_root.display(),
                opts.site,
                opts.apache_root.display()
            ),
            "use the same --apache-root and --site as `maintenance on` did".to_owned(),
        ));
    }
    Ok(())
}

fn journal(opts: &Options, event: &str) {
    if let Err(e) = StateDir::new(&opts.state_dir).journal(event) {
        log::warn!("could not write the journal: {e}");
    }
}

// ---------------------------------------------------------------------------
// apachectl.

fn apachectl(opts: &Options, arg: &str) -> Result<(bool, String, String)> {
    let command = format!("{} {arg}", opts.apachectl.display());
    log::debug!("running `{command}` with APACHE_CONFDIR={}", opts.apache_root.display());
    let out = Command::new(&opts.apachectl)
        .arg(arg)
        .env("APACHE_CONFDIR", &opts.apache_root)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::ApacheCommand { command: command.clone(), source })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), command, text.trim_end().to_owned()))
}

fn configtest(opts: &Options, stage: &'static str, hint: &str) -> Result<()> {
    let (ok, command, output) = apachectl(opts, "configtest")?;
    if ok {
        log::debug!("`{command}` {stage}: {output}");
        Ok(())
    } else {
        Err(Error::ApacheConfigTest { command, stage, output, hint: hint.to_owned() })
    }
}

fn reload(opts: &Options) -> Result<()> {
    let (ok, command, output) = apachectl(opts, "graceful")?;
    if ok {
        Ok(())
    } else {
        Err(Error::ApacheReload { command, output })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVA_SITE: &str = "\
<VirtualHost *:80>
    ServerAdmin webmaster@localhost
    # ServerName commented.example
    ServerName lava.example.org
    ServerAlias lava \\
        lava.internal
    Alias /static/ /usr/share/lava-server/static/
    <Directory /usr/share/lava-server/static>
        SSLOptions +StdEnvVars
        Require all granted
    </Directory>
    ProxyPass /static/ !
    ProxyPass / http://127.0.0.1:8000/
</VirtualHost>
<IfModule mod_ssl.c>
<VirtualHost 192.0.2.1:443 [2001:db8::1]:443>
    ServerName lava.example.org
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/lava.pem
    SSLProxyEngine on
</VirtualHost>
</IfModule>
";

    #[test]
    fn vhosts_keep_addresses_names_and_tls() {
        let v = parse_vhosts(LAVA_SITE);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].addresses, "*:80");
        assert_eq!(v[0].identity, ["ServerName lava.example.org", "ServerAlias lava          lava.internal"]);
        assert_eq!(v[1].addresses, "192.0.2.1:443 [2001:db8::1]:443");
        assert_eq!(
            v[1].identity,
            ["ServerName lava.example.org", "SSLEngine on", "SSLCertificateFile /etc/ssl/certs/lava.pem"]
        );
    }

    #[test]
    fn overrides_replace_addresses_and_names() {
        let mut opts = Options { listen: vec!["127.0.0.1:8080".into()], ..Options::default() };
        assert_eq!(
            holding_vhosts(&opts, LAVA_SITE),
            [VHost { addresses: "127.0.0.1:8080".into(), identity: vec![] }]
        );
        opts.listen.clear();
        opts.server_name = Some("other.test".into());
        let v = holding_vhosts(&opts, LAVA_SITE);
        assert_eq!(v[0].identity, ["ServerName other.test"]);
        assert_eq!(
            v[1].identity,
            ["ServerName other.test", "SSLEngine on", "SSLCertificateFile /etc/ssl/certs/lava.pem"]
        );
    }

    #[test]
    fn holding_config_answers_503_everywhere() {
        let opts = Options::default();
        let c =
            holding_site_config(&opts, Path::new("/etc/apache2/sites-available/lava-server.conf"), LAVA_SITE);
        assert!(c.starts_with(HEADER));
        assert_eq!(c.matches("<VirtualHost ").count(), 2);
        assert!(c.contains("RewriteRule ^ - [R=503,L]"));
        assert!(c.contains("ErrorDocument 503 /lava-maintenance.html"));
        assert!(c.contains("Header always set Retry-After \"600\""));
        assert!(c.contains("DocumentRoot \"/var/lib/lava-server/maintenance\""));
        assert!(!c.contains("ProxyPass"));
        // A site with no VirtualHost gets server-level directives.
        let c = holding_site_config(&opts, Path::new("x"), "ProxyPass / http://127.0.0.1:8000/\n");
        assert!(!c.contains("<VirtualHost"));
        assert!(c.contains("\nRewriteEngine On\n"));
    }

    #[test]
    fn page_is_self_contained() {
        let p = holding_page(600);
        assert!(p.contains("<title>Upgrade in progress"));
        assert!(p.contains("try again in about 10 minutes"));
        assert!(p.contains("content=\"600\""));
        assert!(!p.contains('@'));
        for external in ["src=", "href=", "url(", "@import", "http:", "https:"] {
            assert!(!p.contains(external), "the page refers to something external: {external}");
        }
        assert_eq!(retry_words(30), "in a minute");
        assert_eq!(retry_words(91), "in about 2 minutes");
        assert_eq!(retry_words(3600), "in about 60 minutes");
        assert_eq!(retry_words(7200), "in about 2 hours");
        assert_eq!(retry_words(5400), "in about 2 hours");
    }

    #[test]
    fn lexical_resolution() {
        assert_eq!(
            resolve(
                Path::new("/etc/apache2/sites-enabled"),
                Path::new("../sites-available/lava-server.conf")
            ),
            Path::new("/etc/apache2/sites-available/lava-server.conf")
        );
        assert_eq!(resolve(Path::new("/a/b"), Path::new("/x/./y")), Path::new("/x/y"));
    }

    /// A tree with a fake apachectl that logs its calls and fails
    /// `configtest` when `fail` exists.
    struct Tree {
        dir: tempfile::TempDir,
        opts: Options,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("apache2");
            for d in ["sites-available", "sites-enabled", "mods-available", "mods-enabled"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            for f in ["rewrite.load", "headers.load", "dir.load", "dir.conf"] {
                std::fs::write(root.join("mods-available").join(f), "").unwrap();
            }
            std::os::unix::fs::symlink("../mods-available/dir.load", root.join("mods-enabled/dir.load"))
                .unwrap();
            std::fs::write(
                root.join("sites-available/lava-server.conf"),
                "<VirtualHost *:80>\nServerName lava.test\n</VirtualHost>\n",
            )
            .unwrap();
            std::os::unix::fs::symlink(
                "../sites-available/lava-server.conf",
                root.join("sites-enabled/lava-server.conf"),
            )
            .unwrap();
            let ctl = dir.path().join("apachectl");
            std::fs::write(
                &ctl,
                format!(
                    "#!/bin/sh\necho \"$1 $APACHE_CONFDIR\" >> {log}\nif [ \"$1\" = configtest ] && [ -e {fail} ]; then echo 'Syntax error'; exit 1; fi\nexit 0\n",
                    log = dir.path().join("calls").display(),
                    fail = dir.path().join("fail").display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
            let opts = Options {
                apache_root: root,
                apachectl: ctl,
                page_dir: dir.path().join("www/maintenance"),
                state_dir: dir.path().join("state"),
                ..Options::default()
            };
            Tree { dir, opts }
        }

        /// Every entry under the Apache root and the page directory, with
        /// link targets and file contents.
        fn snapshot(&self) -> Vec<String> {
            fn walk(p: &Path, out: &mut Vec<String>) {
                let Ok(m) = p.symlink_metadata() else { return };
                if m.file_type().is_symlink() {
                    out.push(format!("{} -> {}", p.display(), std::fs::read_link(p).unwrap().display()));
                } else if m.is_dir() {
                    out.push(format!("{}/", p.display()));
                    let mut names: Vec<_> =
                        std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
                    names.sort();
                    for n in names {
                        walk(&n, out);
                    }
                } else {
                    out.push(format!("{} = {}", p.display(), std::fs::read_to_string(p).unwrap()));
                }
            }
            let mut out = Vec::new();
            walk(&self.opts.apache_root, &mut out);
            walk(&self.dir.path().join("www"), &mut out);
            out
        }

        fn calls(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
        }
    }

    #[test]
    fn on_off_round_trip_is_exact_and_idempotent() {
        let t = Tree::new();
        let before = t.snapshot();
        assert_eq!(status(&t.opts).unwrap().state, State::Off);
        match on(&t.opts).unwrap() {
            OnOutcome::Enabled { disabled_sites, enabled_modules, addresses, .. } => {
                assert_eq!(disabled_sites, ["lava-server.conf"]);
                assert_eq!(enabled_modules, ["rewrite", "headers"]);
                assert_eq!(addresses, ["*:80"]);
            }
            other => panic!("{other:?}"),
        }
        let root = &t.opts.apache_root;
        assert!(root.join("sites-enabled/lava-server.conf").symlink_metadata().is_err());
        assert_eq!(
            std::fs::read_link(root.join("sites-enabled/lava-server-maintenance.conf")).unwrap(),
            Path::new("../sites-available/lava-server-maintenance.conf")
        );
        let conf = t.opts.apache_root.join("mods-enabled/rewrite.load");
        assert!(conf.exists());
        let mode = std::fs::metadata(t.opts.page_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(status(&t.opts).unwrap().state, State::On);
        let calls = t.calls();
        assert_eq!(
            calls.lines().map(|l| l.split(' ').next().unwrap()).collect::<Vec<_>>(),
            ["configtest", "configtest", "graceful"]
        );
        assert!(calls.contains(&root.display().to_string()), "APACHE_CONFDIR is the root: {calls}");

        let during = t.snapshot();
        assert!(matches!(on(&t.opts).unwrap(), OnOutcome::AlreadyOn { .. }));
        assert_eq!(t.snapshot(), during);
        assert_eq!(t.calls().lines().count(), 3, "a no-op `on` runs nothing");

        assert!(matches!(off(&t.opts).unwrap(), OffOutcome::Restored { .. }));
        assert_eq!(t.snapshot(), before);
        assert!(!t.opts.record_file().exists());
        assert_eq!(off(&t.opts).unwrap(), OffOutcome::AlreadyOff);
        assert_eq!(status(&t.opts).unwrap().state, State::Off);
    }

    #[test]
    fn failed_configtest_changes_nothing() {
        let t = Tree::new();
        let before = t.snapshot();
        std::fs::write(t.dir.path().join("fail"), "").unwrap();
        let e = on(&t.opts).unwrap_err();
        assert!(
            matches!(e, Error::ApacheConfigTest { stage: "before switching to the holding page", .. }),
            "{e}"
        );
        assert_eq!(t.snapshot(), before);
        assert!(!t.opts.record_file().exists());

        // Failing only once the holding site is in place: undone.
        std::fs::remove_file(t.dir.path().join("fail")).unwrap();
        let ctl = &t.opts.apachectl;
        let script = std::fs::read_to_string(ctl).unwrap().replace(
            "[ -e ",
            &format!(
                "[ -e {}/sites-enabled/lava-server-maintenance.conf ] && [ -e ",
                t.opts.apache_root.display()
            ),
        );
        std::fs::write(ctl, script).unwrap();
        std::fs::write(t.dir.path().join("fail"), "").unwrap();
        let e = on(&t.opts).unwrap_err();
        assert!(matches!(e, Error::ApacheConfigTest { stage: "with the holding page in place", .. }), "{e}");
        assert_eq!(t.snapshot(), before);
        assert!(!t.opts.record_file().exists());
        assert!(!t.calls().contains("graceful"));
    }

    #[test]
    fn site_not_enabled() {
        let t = Tree::new();
        std::fs::remove_file(t.opts.apache_root.join("sites-enabled/lava-server.conf")).unwrap();
        let before = t.snapshot();
        assert_eq!(enable_if_site_enabled(&t.opts).unwrap(), None);
        assert!(matches!(on(&t.opts), Err(Error::Maintenance { .. })));
        assert_eq!(t.snapshot(), before);
        assert_eq!(t.calls(), "");
    }

    #[test]
    fn re_enabled_site_is_disabled_again_and_restored_once() {
        let t = Tree::new();
        // An admin's own name for the link.
        let sites = t.opts.apache_root.join("sites-enabled");
        std::fs::rename(sites.join("lava-server.conf"), sites.join("010-lava.conf")).unwrap();
        let before = t.snapshot();
        assert!(matches!(enable_if_site_enabled(&t.opts).unwrap(), Some(OnOutcome::Enabled { .. })));
        // A package upgrade runs `a2ensite lava-server` meanwhile.
        std::os::unix::fs::symlink("../sites-available/lava-server.conf", sites.join("lava-server.conf"))
            .unwrap();
        assert!(matches!(status(&t.opts).unwrap().state, State::Inconsistent(_)));
        match on(&t.opts).unwrap() {
            OnOutcome::Enabled { disabled_sites, enabled_modules, .. } => {
                assert_eq!(disabled_sites, ["lava-server.conf"]);
                assert!(enabled_modules.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(status(&t.opts).unwrap().state, State::On);
        let restored = off(&t.opts).unwrap();
        assert!(
            matches!(restored, OffOutcome::Restored { ref restored_sites, .. } if restored_sites == &["010-lava.conf", "lava-server.conf"])
        );
        // Both links come back: the admin's and the package's.
        let mut expected = before.clone();
        expected.push(format!(
            "{} -> ../sites-available/lava-server.conf",
            sites.join("lava-server.conf").display()
        ));
        expected.sort();
        let mut after = t.snapshot();
        after.sort();
        assert_eq!(after, expected);
    }
}
