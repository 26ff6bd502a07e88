//! A spinner on a terminal for the steps that take a while without
//! countable progress (`backup`, `drop`); nothing when stderr is not a
//! terminal (logs say what happens there).

use std::io::IsTerminal;
use std::time::Duration;

/// Shows `message` with a spinner until dropped.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub(crate) fn new(message: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
