//! What every benchmark program needs: a process's peak RSS, medians, and
//! the wrapper to run what is measured under.

use std::process::Command;
use std::time::Duration;

/// `--measure-rss OUT -- CMD...`: runs CMD, writes its peak RSS (KiB) to
/// OUT (the largest of it and the children it waited for) and exits with
/// its status.  A benchmark program calls this first thing when its
/// arguments start with `--measure-rss`, and runs what it measures as
/// `<itself> --measure-rss OUT -- CMD...`.
pub fn measure_rss_mode(args: &[String]) -> ! {
    let out = &args[0];
    assert_eq!(args[1], "--");
    let status = Command::new(&args[2]).args(&args[3..]).status().expect("run the measured command");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    std::fs::write(out, usage.max_rss().to_string()).expect("write rss");
    std::process::exit(status.code().unwrap_or(1));
}

/// The median of `v` (the upper one of an even count); zero, meaning
/// not measured, for none.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The command `LAVA_V1_BENCH_WRAP` names (split at white space), to run
/// what is measured under, a profiler say: `LAVA_V1_BENCH_WRAP="perf
/// record -o /tmp/perf.data --"`.  Empty when it is not set.
pub fn wrapper() -> Vec<String> {
    std::env::var("LAVA_V1_BENCH_WRAP").unwrap_or_default().split_whitespace().map(String::from).collect()
}
