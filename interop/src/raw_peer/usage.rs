//! What a daemon uses while a scripted peer works on it, from `/proc`: resident memory
//! and CPU time, and a sampler that records the peak resident memory while a test runs
//! (for bounds like "RSS grew less than 64 MiB", never for timings).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// Resident memory and CPU time of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

/// Clock ticks per second of `/proc/PID/stat` times.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// Resident memory of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
    parse_vm_rss(&text).ok_or_else(|| Error::parse(path, "no VmRSS line"))
}

/// The `VmRSS:   1234 kB` value of a status file.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User plus system time of a `/proc/PID/stat` line, in ticks (fields 14 and 15, counted
/// after the parenthesised command name, which may contain spaces).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Memory and CPU of `pid` now; checks first that the process is still `comm` (its
/// `/proc/PID/comm`), so a recycled PID is never measured instead.
pub fn usage(pid: u32, comm: &str) -> Result<Usage> {
    let path = format!("/proc/{pid}/comm");
    let name = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
    if name.trim() != comm {
        return Err(Error::Check(format!(
            "pid {pid} is {:?}, not {comm}",
            name.trim()
        )));
    }
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| Error::parse(path, "stat fields"))?;
    Ok(Usage {
        rss_kib: rss_kib(pid)?,
        cpu: Duration::from_millis(ticks * 1000 / ticks_per_second()),
    })
}

/// Samples the resident memory of a process every 50 ms until stopped.
#[derive(Debug)]
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeakRss {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("peak-rss".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Ok(r) = rss_kib(pid) {
                        p.fetch_max(r, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .ok();
        PeakRss { peak, stop, thread }
    }

    /// Stops sampling; the highest resident memory seen, KiB.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.peak.load(Ordering::Relaxed)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        assert_eq!(
            parse_vm_rss("Name:\tbgpd\nVmRSS:\t   20480 kB\nVmData: 1 kB\n"),
            Some(20480)
        );
        let stat = "1234 (bgp d) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn measures_this_process() {
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let u = usage(std::process::id(), comm.trim()).expect("usage");
        assert!(usage(std::process::id(), "not-this").is_err());
        assert!(u.rss_kib > 0);
        let sampler = PeakRss::start(std::process::id());
        std::thread::sleep(Duration::from_millis(120));
        assert!(sampler.stop() >= u.rss_kib / 2);
    }
}
