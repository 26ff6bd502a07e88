//! Progress of the postinst's long steps, as debconf `PROGRESS` bars when
//! it runs under a debconf frontend (the shell postinst loads the
//! confmodule and runs the program, which inherits the protocol on fd 3 and
//! fd 0).  A progress bar is never worth failing the upgrade for: any
//! error is logged and the bar is dropped.

use std::io::{BufRead, Write};

use lava_v1_debconf::{Debconf, ProgressCommand};

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Checking the maintenance window and the rights.
    Preflight,
    /// Writing and verifying the backup.
    Backup,
    /// Writing and checking the readable copy of the V1 results.
    Export,
    /// The drop transaction.
    Drop,
}

impl Step {
    fn template(self) -> &'static str {
        match self {
            Step::Preflight => "lava-server/progress-preflight",
            Step::Backup => "lava-server/progress-backup",
            Step::Export => "lava-server/progress-export",
            Step::Drop => "lava-server/progress-drop",
        }
    }

    fn position(self) -> i64 {
        match self {
            Step::Preflight => 0,
            Step::Backup => 1,
            Step::Export => 2,
            Step::Drop => 3,
        }
    }
}

/// The number of steps.
const STEPS: i64 = 4;

/// Where progress goes.
pub trait Progress {
    /// A step begins.
    fn step(&mut self, step: Step);
    /// A step that writes the file `file` begins (the bar names it).
    fn step_writing(&mut self, step: Step, file: &str) {
        log::debug!("progress: writing {file}");
        self.step(step);
    }
    /// All steps are over.
    fn done(&mut self);
}

/// No progress display (not under debconf, or in tests).
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn step(&mut self, step: Step) {
        log::debug!("progress: {step:?}");
    }
    fn done(&mut self) {}
}

/// A debconf progress bar.
pub struct DebconfBar<R: BufRead, W: Write> {
    dc: Option<Debconf<R, W>>,
    started: bool,
}

impl<R: BufRead, W: Write> DebconfBar<R, W> {
    /// Draws over `dc`.
    pub fn new(dc: Debconf<R, W>) -> Self {
        DebconfBar { dc: Some(dc), started: false }
    }

    fn send(&mut self, cmd: ProgressCommand<'_>) {
        if let Some(dc) = self.dc.as_mut() {
            if let Err(e) = dc.progress(cmd) {
                log::warn!("debconf progress bar dropped: {e}");
                self.dc = None;
            }
        }
    }
}

impl<R: BufRead, W: Write> Progress for DebconfBar<R, W> {
    fn step(&mut self, step: Step) {
        if !self.started {
            self.started = true;
            self.send(ProgressCommand::Start { min: 0, max: STEPS, question: "lava-server/progress-title" });
        }
        self.send(ProgressCommand::Set(step.position()));
        self.send(ProgressCommand::Info(step.template()));
    }

    fn step_writing(&mut self, step: Step, file: &str) {
        if let Some(dc) = self.dc.as_mut() {
            if let Err(e) = dc.subst(step.template(), "file", file) {
                log::warn!("debconf progress bar dropped: {e}");
                self.dc = None;
            }
        }
        self.step(step);
    }

    fn done(&mut self) {
        if self.started {
            self.send(ProgressCommand::Set(STEPS));
            self.send(ProgressCommand::Stop);
        }
    }
}
