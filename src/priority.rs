//! Thread priorities: who yields to whom when the cores are busy.
//!
//! Every poll ends in the single writer thread, so the writer (and the runtime threads that
//! fetch) keep the normal priority; parsing, sanitising and feature extraction, which run in
//! parallel ahead of it, run at [`PARSE_NICE`], so when the cores are short they give way to
//! the writer that every one of them is waiting for (a cold poll of 1,000 feeds went from
//! ~3.1 s to ~2.9 s); serving runs at [`SERVE_NICE`], below both (see `serve`).
//!
//! Linux applies `setpriority(PRIO_PROCESS, tid)` to that one thread. A thread can only be made
//! nicer, never less nice again, without privilege; every call here only lowers priority.

use std::cell::Cell;

/// Niceness of threads that have parsed a feed (blocking-pool threads; they keep it).
pub const PARSE_NICE: i32 = 5;

/// Niceness of the HTTP worker threads and the feed builder thread: as nice as it gets. A poll
/// that waits delays every subscriber's news; a subscriber whose answer waits a few
/// milliseconds loses nothing. Under CFS a nice-19 thread weighs 1/68 of a nice-0 one, so it
/// yields a core as soon as a poll needs it and has all the CPU the polls leave, which between
/// polls is all of it. (Under systemd the service's cgroup is what competes with other
/// services; niceness only orders the daemon's own threads.)
pub const SERVE_NICE: i32 = 19;

thread_local! {
    static NICE: Cell<i32> = const { Cell::new(0) };
}

/// Makes the calling thread at least `nice` nicer than it started (idempotent per thread: a
/// blocking-pool thread that parses many feeds asks every time).
pub fn at_least(nice: i32) {
    if NICE.get() >= nice {
        return;
    }
    let by = nice - NICE.get();
    NICE.set(nice);
    let tid = rustix::thread::gettid();
    let result = rustix::process::getpriority_process(Some(tid))
        .and_then(|now| rustix::process::setpriority_process(Some(tid), (now + by).min(19)));
    if let Err(e) = result {
        tracing::debug!("lowering a thread's priority: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn lowers_only_the_calling_thread_and_only_once() {
        let before = current();
        let inside = std::thread::spawn(|| {
            at_least(PARSE_NICE);
            at_least(PARSE_NICE);
            let parse = current();
            at_least(SERVE_NICE);
            (parse, current())
        })
        .join()
        .unwrap();
        assert_eq!(inside, ((before + PARSE_NICE).min(19), (before + SERVE_NICE).min(19)));
        assert_eq!(current(), before, "the caller keeps its priority");
    }
}
