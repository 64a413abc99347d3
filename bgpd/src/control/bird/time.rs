//! Times as BIRD prints them: local time, `%T` (BIRD 2: with milliseconds) within 20 hours
//! and `%F` after for protocol times (`timeformat protocol`), date and time for the status
//! lines (`timeformat base`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_speaker::config::BirdFormat;

/// Protocol times younger than this are shown as a time of day, older ones as a date
/// (BIRD's default `timeformat protocol`, 20 hours).
const SHORT_TIME: Duration = Duration::from_secs(20 * 3600);

/// A broken-down local time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i32,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Milliseconds.
    pub millis: u32,
}

impl Civil {
    /// `t` in the local time zone, as BIRD formats times (`localtime`).
    pub fn local(t: SystemTime) -> Option<Civil> {
        let d = t.duration_since(UNIX_EPOCH).ok()?;
        let secs = libc::time_t::try_from(d.as_secs()).ok()?;
        // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: localtime_r reads `secs` and writes only `tm`, both live locals; it is
        // the thread-safe variant.
        let r = unsafe { libc::localtime_r(&secs, &mut tm) };
        if r.is_null() {
            return None;
        }
        Some(Civil {
            year: tm.tm_year.checked_add(1900)?,
            month: u32::try_from(tm.tm_mon).ok()? + 1,
            day: u32::try_from(tm.tm_mday).ok()?,
            hour: u32::try_from(tm.tm_hour).ok()?,
            minute: u32::try_from(tm.tm_min).ok()?,
            second: u32::try_from(tm.tm_sec).ok()?,
            millis: d.subsec_millis(),
        })
    }

    fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn time(&self, format: BirdFormat) -> String {
        match format {
            BirdFormat::Bird1 => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
            BirdFormat::Bird2 => format!(
                "{:02}:{:02}:{:02}.{:03}",
                self.hour, self.minute, self.second, self.millis
            ),
        }
    }
}

/// A protocol time: the time of day if `age` is under 20 hours, else the date (BIRD's
/// default `timeformat protocol`).
pub fn proto_time(t: &Civil, age: Duration, format: BirdFormat) -> String {
    if age < SHORT_TIME {
        t.time(format)
    } else {
        t.date()
    }
}

/// A full date and time (BIRD's `timeformat base`).
pub fn base_time(t: &Civil, format: BirdFormat) -> String {
    format!("{} {}", t.date(), t.time(format))
}

/// `t` in local time, the epoch if it cannot be had.
pub(super) fn local_or_epoch(t: SystemTime) -> Civil {
    Civil::local(t).unwrap_or(Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
    })
}
