//! CPU time and memory: this process's own (`getrusage(2)`, so a report shows the load
//! generator was not the bottleneck) and the device under test's, read from
//! `/proc/PID/stat` (utime + stime, proc(5)) and `/proc/PID/status` (VmHWM, the peak
//! resident set).

use std::time::Duration;

/// User plus system CPU time of this process so far; `None` if the kernel refuses.
pub fn process_cpu() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which
    // points to one; we read it only when the call succeeded.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    Some(timeval(usage.ru_utime)? + timeval(usage.ru_stime)?)
}

fn timeval(t: libc::timeval) -> Option<Duration> {
    let secs = u64::try_from(t.tv_sec).ok()?;
    let micros = u32::try_from(t.tv_usec).ok()?;
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// Raises this process's open-file limit to its hard limit (one socket per client; the
/// usual soft limit of 1,024 is too few for 1,000 clients). Returns the new soft limit.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls read or write exactly one `rlimit`, which `limit` is.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// CPU time (user + system) and peak resident set of another process.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ProcessUsage {
    pub cpu: Duration,
    /// VmHWM in KiB.
    pub peak_rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if the process is gone or the
/// files do not parse.
pub fn process_usage(pid: u32) -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    let cpu_ticks = stat_cpu_ticks(&stat)?;
    Some(ProcessUsage {
        cpu: Duration::from_secs_f64(cpu_ticks as f64 / ticks as f64),
        peak_rss_kib: status_peak_rss_kib(&status)?,
    })
}

/// utime + stime (fields 14 and 15 of proc(5)), in clock ticks. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state): utime is the 12th field of it, stime the 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmHWM:` line of `/proc/PID/status`, in KiB.
fn status_peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (bgp d) x) S 1 4242 4242 0 -1 4194560 1 0 0 0                     250 75 0 0 20 0 3 0 100 1000 50";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn peak_rss_is_the_vmhwm_line() {
        let status = "Name:\tbgpd\nVmPeak:\t  9000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(status_peak_rss_kib(status), Some(4321));
        assert_eq!(status_peak_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_read_through_proc() {
        let usage = process_usage(std::process::id()).expect("/proc/self");
        assert!(usage.peak_rss_kib > 0);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu().expect("getrusage");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = process_cpu().expect("getrusage");
        assert!(after > before, "{before:?} -> {after:?}");
    }

    #[test]
    fn open_files_limit_is_at_least_what_it_was() {
        let limit = raise_open_files_limit().expect("setrlimit to the hard limit");
        assert!(limit >= 64, "soft limit {limit}");
    }
}
