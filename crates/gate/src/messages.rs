//! What the maintainer scripts tell the admin, in one place.

use std::path::Path;

use crate::{PACKAGE, QUESTION};

/// The preinst stopped the upgrade.
pub fn upgrade_stopped(old: &str, new: &str, value: &str, found: &str) -> String {
    let answered = if value.is_empty() {
        "has no answer".to_owned()
    } else {
        format!("was answered \"{value}\", not \"true\"")
    };
    format!(
        "{PACKAGE}: the upgrade from {old} to {new} was stopped.\n\
         {PACKAGE}: the debconf question \"Remove V1 data from database?\" ({QUESTION}) {answered}.\n\
         {PACKAGE}: {found}\n\
         {PACKAGE}: Nothing was deleted: {PACKAGE} {old} stays installed and keeps running.\n\
         {PACKAGE}: You will be asked again at the next upgrade. To stop being offered this upgrade:\n\
         \x20   apt-mark hold {PACKAGE}\n\
         {PACKAGE}: To upgrade and permanently delete the V1 data without being asked (make a backup first):\n\
         \x20   echo \"{PACKAGE} {QUESTION} boolean true\" | debconf-set-selections\n"
    )
}

/// The postinst's drop failed; `error` is the error as
/// [`lava_v1_core::explain::render`] tells it.
pub fn drop_failed(error: &str, journal: &Path) -> String {
    let error = error.trim_end();
    format!(
        "{PACKAGE}: error: removing the V1 data failed; no data was removed (the transaction was rolled back).\n\
         {error}\n\
         {PACKAGE}: Every step is logged in {journal}.\n\
         {PACKAGE}: {PACKAGE} stays half-configured. Fix the cause above, then finish the upgrade with:\n\
         \x20   dpkg --configure -a\n\
         {PACKAGE}: Do not run `lava-server manage migrate` by hand.\n",
        journal = journal.display()
    )
}

/// The postinst found V1 data without a decision that allows removing it.
pub fn no_decision(reason: &str, journal: &Path) -> String {
    format!(
        "{PACKAGE}: error: V1 data is still in the database, and {reason}; nothing was removed.\n\
         {PACKAGE}: To remove it now (make a backup first), run:\n\
         \x20   lava-v1 drop --yes\n\
         {PACKAGE}: then finish the upgrade with:\n\
         \x20   dpkg --configure -a\n\
         {PACKAGE}: Every step is logged in {journal}.\n",
        journal = journal.display()
    )
}

/// The preinst stopped the upgrade before dpkg unpacked anything, because
/// the removal would fail; `error` is the error as
/// [`lava_v1_core::explain::render`] tells it.
pub fn not_ready(old: &str, new: &str, error: &str) -> String {
    let error = error.trim_end();
    format!(
        "{PACKAGE}: the upgrade from {old} to {new} was stopped before anything was unpacked or changed:\n\
         {error}\n\
         {PACKAGE}: Nothing was deleted: {PACKAGE} {old} stays installed, configured and running.\n\
         {PACKAGE}: Fix the cause above, then run the same upgrade again: the answer to \"Remove V1 data\n\
         {PACKAGE}: from database?\" ({QUESTION}) is kept, so it is not asked again.\n\
         {PACKAGE}: `lava-v1 preflight` runs these checks by hand.\n"
    )
}

/// Every line of `text` prefixed with the package name, for stderr.
pub fn prefixed(text: &str) -> String {
    text.lines().map(|l| format!("{PACKAGE}: {l}\n")).collect()
}
