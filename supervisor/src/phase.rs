//! `SLUICE_TRACE_TIMES=1`: the duration of each launch phase on stderr, for
//! finding where a launch's time goes (`ARCHITECTURE.md`, *Speed*). Off, a
//! mark costs one relaxed load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
/// (when tracing started, the previous mark).
static MARKS: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);

/// Starts tracing when `SLUICE_TRACE_TIMES` is set and not `0`.
pub fn init() {
    if std::env::var_os("SLUICE_TRACE_TIMES").is_some_and(|v| !v.is_empty() && v != "0") {
        let now = Instant::now();
        *MARKS.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, now));
        ON.store(true, Ordering::Relaxed);
    }
}

/// Ends `phase`: prints the time since the previous mark and since `init`.
pub fn mark(phase: &str) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let now = Instant::now();
    let mut marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((start, last)) = marks.as_mut() {
        // One write: stderr is unbuffered, and a write per piece would be
        // counted in the next phase.
        let line = format!(
            "sluice: phase {phase:<28} {:>8.3} ms (at {:>8.3} ms)\n",
            (now - *last).as_secs_f64() * 1e3,
            (now - *start).as_secs_f64() * 1e3
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        *last = Instant::now();
    }
}
