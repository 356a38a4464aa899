//! Progress of a long build, and a line on the terminal that shows it.
//!
//! The work updates a [`Progress`] (relaxed atomic counters, nothing else); a separate
//! thread reads it every 200 ms and redraws one line on stderr. Nothing here touches the
//! data being built, so showing progress or not can never change an output byte.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Counters shared between a long operation and whoever reports on it.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// Nothing done, total unknown (0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the estimated total (uncompressed bytes of the layer's file contents).
    pub fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` more as done.
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The estimated total (0: unknown).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Whether to draw a progress line: only for a person watching, i.e. when stdout and
/// stderr are both terminals, and not with `--quiet`.
pub fn wanted(quiet: bool, stdout_is_terminal: bool, stderr_is_terminal: bool) -> bool {
    !quiet && stdout_is_terminal && stderr_is_terminal
}

/// [`wanted`] for this process's stdout and stderr.
pub fn wanted_here(quiet: bool) -> bool {
    wanted(
        quiet,
        std::io::stdout().is_terminal(),
        std::io::stderr().is_terminal(),
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The text of the line: bytes read, estimated share of the total, average rate.
pub fn line(done: u64, total: u64, elapsed: Duration) -> String {
    let mut s = format!("ocipack: {:.1} MiB read", mib(done));
    if total > 0 {
        // The estimate leaves out tar headers, so the count can pass it slightly.
        let pct = (done as f64 * 100.0 / total as f64).min(99.0);
        s.push_str(&format!(" of ~{:.1} MiB ({pct:.0}%)", mib(total)));
    }
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        s.push_str(&format!(", {:.1} MiB/s", mib(done) / secs));
    }
    s
}

/// Runs `work`; if `show`, a thread meanwhile redraws the progress line on stderr every
/// 200 ms (the first time after 200 ms, so quick work prints nothing) and erases it at the
/// end.
pub fn report_while<T>(show: bool, progress: &Progress, work: impl FnOnce() -> T) -> T {
    if !show {
        return work();
    }
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let start = Instant::now();
            let mut width = 0usize;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                let text = line(progress.done(), progress.total(), start.elapsed());
                let pad = width.saturating_sub(text.len());
                width = width.max(text.len());
                // A progress line that cannot be written is not worth failing for.
                let _ = write!(std::io::stderr(), "\r{text}{:pad$}", "");
            }
            if width > 0 {
                let _ = write!(std::io::stderr(), "\r{:width$}\r", "");
            }
        });
        let result = work();
        drop(stop);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_only_to_a_person_at_a_terminal() {
        assert!(wanted(false, true, true));
        assert!(!wanted(true, true, true), "--quiet");
        assert!(!wanted(false, false, true), "stdout redirected");
        assert!(!wanted(false, true, false), "stderr redirected");
        assert!(!wanted(false, false, false));
    }

    #[test]
    fn line_shows_bytes_share_and_rate() {
        let mib = 1024 * 1024;
        assert_eq!(
            line(512 * mib, 1024 * mib, Duration::from_secs(2)),
            "ocipack: 512.0 MiB read of ~1024.0 MiB (50%), 256.0 MiB/s"
        );
        // Unknown total; nothing elapsed yet.
        assert_eq!(line(0, 0, Duration::ZERO), "ocipack: 0.0 MiB read");
        // The count may pass the estimate (tar headers): never 100% before the end.
        assert!(line(11 * mib, 10 * mib, Duration::from_secs(1)).contains("(99%)"));
    }

    #[test]
    fn work_result_is_returned_whether_shown_or_not() {
        let p = Progress::new();
        p.set_total(10);
        for show in [false, true] {
            let r = report_while(show, &p, || {
                p.add(5);
                42
            });
            assert_eq!(r, 42);
        }
        assert_eq!((p.done(), p.total()), (10, 10));
    }
}
