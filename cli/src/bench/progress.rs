//! The progress bar (indicatif): one step per target and lease count, a message naming the
//! current phase, and a spinner that keeps turning while the workers are busy. Hidden with
//! `--json` and when stdout or stderr is not a terminal.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, or nothing.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar of `steps` steps when `enabled`, else a silent stand-in.
    pub(crate) fn new(enabled: bool, steps: u64) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::new(steps);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:24}] {pos}/{len} {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// A bar that never draws.
    #[cfg(test)]
    pub(crate) fn hidden() -> Self {
        Progress { bar: None }
    }

    /// Names the current phase.
    pub(crate) fn say(&self, msg: impl Into<Cow<'static, str>>) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        }
    }

    /// One step done.
    pub(crate) fn step(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
