//! MRT files as a daemon writes them: compressed or not, named after the period they
//! cover, and never seen half-written.
//!
//! - [`CompressedWriter`] compresses any writer as [`Compression`] (the reader's own
//!   enum, so the reader reads back whatever the writer wrote) says;
//!   [`Compression::for_path`] picks it from a file name.
//! - [`MrtFile`] writes to `.NAME.partial` beside the final path and renames it when
//!   [`MrtFile::finish`] is called, so a reader (a collector's rsync, `bgpctl mrt dump`)
//!   only ever sees whole files; an abandoned file is removed when dropped.
//! - [`FileNamePattern`] renders strftime-like names in UTC, as route collectors name
//!   their files (`bview.%Y%m%d.%H%M.gz` gives `bview.20020722.2337.gz`).
//! - [`Period`] cuts time into intervals aligned on the Unix epoch, so an 8-hour dump runs
//!   at 00:00, 08:00 and 16:00 UTC whenever the daemon started.
//! - [`RotatingUpdateLog`] is an [`UpdateLogWriter`] that moves to a new file at each
//!   period boundary.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::update_log::{Bgp4mpSession, BgpState, Direction, MrtTime, UpdateLogWriter};
use super::WriteError;
use crate::reader::Compression;

impl Compression {
    /// The compression a file name asks for: `.gz` gzip, `.bz2` bzip2, else none.
    pub fn for_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("bz2") => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// Any writer with the compression the reader reads (gzip and bzip2 at their fast levels:
/// a dump should cost the daemon little CPU); [`CompressedWriter::finish`] completes the
/// compressed stream and hands the writer back.
pub struct CompressedWriter<W: Write> {
    inner: Encoder<W>,
}

enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
}

impl<W: Write> CompressedWriter<W> {
    pub fn new(out: W, compression: Compression) -> CompressedWriter<W> {
        let inner = match compression {
            Compression::None => Encoder::Plain(out),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::fast(),
            )),
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                out,
                bzip2::Compression::fast(),
            )),
        };
        CompressedWriter { inner }
    }

    /// Write the compressed stream's trailer and return the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(g) => g.finish(),
            Encoder::Bzip2(b) => b.finish(),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.inner {
            Encoder::Plain(w) => w,
            Encoder::Gzip(g) => g,
            Encoder::Bzip2(b) => b,
        }
    }
}

impl<W: Write> Write for CompressedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl<W: Write> std::fmt::Debug for CompressedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Encoder::Plain(_) => "plain",
            Encoder::Gzip(_) => "gzip",
            Encoder::Bzip2(_) => "bzip2",
        };
        f.debug_struct("CompressedWriter")
            .field("compression", &kind)
            .finish()
    }
}

/// An MRT file being written; see the module docs.
#[derive(Debug)]
pub struct MrtFile {
    path: PathBuf,
    partial: PathBuf,
    out: Option<CompressedWriter<BufWriter<File>>>,
}

impl MrtFile {
    /// Start writing `path` with `compression`. Parent directories must exist.
    pub fn create(path: impl Into<PathBuf>, compression: Compression) -> io::Result<MrtFile> {
        let path = path.into();
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "MRT file path has no file name",
            )
        })?;
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(name);
        partial_name.push(".partial");
        let partial = path.with_file_name(partial_name);
        let file = BufWriter::with_capacity(256 * 1024, File::create(&partial)?);
        Ok(MrtFile {
            path,
            partial,
            out: Some(CompressedWriter::new(file, compression)),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete the compressed stream, flush, and move the file to its final path
    /// (replacing a file of that name). Returns the path.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        let out = self.out.take().ok_or_else(finished)?;
        out.finish()?
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&self.partial, &self.path)?;
        Ok(std::mem::take(&mut self.path))
    }

    fn writer(&mut self) -> io::Result<&mut CompressedWriter<BufWriter<File>>> {
        self.out.as_mut().ok_or_else(finished)
    }
}

fn finished() -> io::Error {
    io::Error::other("MRT file already finished")
}

impl Write for MrtFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for MrtFile {
    fn drop(&mut self) {
        // Not finished: an abandoned dump must not be mistaken for a complete one.
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// A strftime-like file name pattern, rendered in UTC.
///
/// Conversions: `%Y` year, `%y` year in the century, `%m` month, `%d` day, `%j` day of
/// the year, `%H` hour, `%M` minute, `%S` second (all zero-padded), `%s` seconds since
/// the Unix epoch, `%%` a percent sign. Anything else after `%` is refused when the
/// pattern is made, so a typo fails at configuration time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNamePattern {
    pattern: String,
}

impl FileNamePattern {
    pub fn new(pattern: impl Into<String>) -> Result<FileNamePattern, WriteError> {
        let pattern = pattern.into();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('Y' | 'y' | 'm' | 'd' | 'j' | 'H' | 'M' | 'S' | 's' | '%') => {}
                    Some(other) => {
                        return Err(WriteError::Invalid(format!(
                            "unknown conversion %{other} in file name pattern {pattern:?}"
                        )))
                    }
                    None => {
                        return Err(WriteError::Invalid(format!(
                            "file name pattern {pattern:?} ends with %"
                        )))
                    }
                }
            }
        }
        Ok(FileNamePattern { pattern })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The name for time `t` (times before 1970 render as the epoch).
    pub fn render(&self, t: SystemTime) -> PathBuf {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let c = Utc::from_unix(secs);
        let mut out = String::with_capacity(self.pattern.len() + 16);
        let mut chars = self.pattern.chars();
        while let Some(ch) = chars.next() {
            if ch != '%' {
                out.push(ch);
                continue;
            }
            // `new` checked every conversion.
            let s = match chars.next() {
                Some('Y') => format!("{:04}", c.year),
                Some('y') => format!("{:02}", c.year.rem_euclid(100)),
                Some('m') => format!("{:02}", c.month),
                Some('d') => format!("{:02}", c.day),
                Some('j') => format!("{:03}", c.day_of_year),
                Some('H') => format!("{:02}", c.hour),
                Some('M') => format!("{:02}", c.minute),
                Some('S') => format!("{:02}", c.second),
                Some('s') => secs.to_string(),
                _ => "%".to_string(),
            };
            out.push_str(&s);
        }
        PathBuf::from(out)
    }
}

/// A UTC calendar time.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    day_of_year: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Utc {
    /// Seconds since the epoch to the proleptic Gregorian calendar (the days-to-civil
    /// algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    fn from_unix(secs: u64) -> Utc {
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // [0, 146096]
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from 1 March
        let mp = (5 * doy + 2) / 153; // [0, 11]
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let before = BEFORE.get(month as usize - 1).copied().unwrap_or(0);
        let day_of_year = before + day + u32::from(leap && month > 2);
        Utc {
            year,
            month,
            day,
            day_of_year,
            hour: rem / 3_600,
            minute: rem % 3_600 / 60,
            second: rem % 60,
        }
    }
}

/// Time cut into intervals of a fixed length, aligned on the Unix epoch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Period(Duration);

impl Period {
    /// A period of `length`, at least one second.
    pub fn new(length: Duration) -> Result<Period, WriteError> {
        if length < Duration::from_secs(1) {
            return Err(WriteError::Invalid(format!(
                "MRT period of {length:?} is shorter than a second"
            )));
        }
        Ok(Period(length))
    }

    pub fn length(&self) -> Duration {
        self.0
    }

    /// The start of the interval holding `t`.
    pub fn start_of(&self, t: SystemTime) -> SystemTime {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let n = since.as_nanos() / self.0.as_nanos();
        let start = self.0.as_nanos() * n;
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(start).unwrap_or(u64::MAX))
    }

    /// The first interval boundary after `t`: when the next periodic dump is due.
    pub fn next_after(&self, t: SystemTime) -> SystemTime {
        self.start_of(t) + self.0
    }
}

/// An update log cut into one file per [`Period`], named by [`FileNamePattern`] after
/// the start of the period it covers.
///
/// Writes go to the file of the period `now` falls in: the first write of a new period
/// completes the previous file and opens the next. A daemon also calls
/// [`RotatingUpdateLog::rotate_if_due`] at [`RotatingUpdateLog::deadline`], so a quiet
/// period's file appears on time. Each file appears under its name once complete (see
/// [`MrtFile`]).
#[derive(Debug)]
pub struct RotatingUpdateLog {
    pattern: FileNamePattern,
    period: Period,
    compression: Compression,
    current: Option<(UpdateLogWriter<MrtFile>, SystemTime)>,
}

impl RotatingUpdateLog {
    /// A log with no file open yet; `compression` applies to every file.
    pub fn new(pattern: FileNamePattern, period: Period, compression: Compression) -> Self {
        RotatingUpdateLog {
            pattern,
            period,
            compression,
            current: None,
        }
    }

    /// Log a BGP message at `now` (see [`UpdateLogWriter::write_message`]). Returns the
    /// path of a file this write completed, if it started a new period.
    pub fn write_message(
        &mut self,
        now: SystemTime,
        session: &Bgp4mpSession,
        direction: Direction,
        add_path: bool,
        message: &[u8],
    ) -> Result<Option<PathBuf>, WriteError> {
        let time = MrtTime::from_system_time(now)?;
        let done = self.rotate_if_due(now)?;
        self.open(now)?
            .write_message(time, session, direction, add_path, message)?;
        Ok(done)
    }

    /// Log a state change at `now`; returns a completed file as `write_message` does.
    pub fn write_state_change(
        &mut self,
        now: SystemTime,
        session: &Bgp4mpSession,
        old: BgpState,
        new: BgpState,
    ) -> Result<Option<PathBuf>, WriteError> {
        let time = MrtTime::from_system_time(now)?;
        let done = self.rotate_if_due(now)?;
        self.open(now)?
            .write_state_change(time, session, old, new)?;
        Ok(done)
    }

    /// When the open file's period ends (`None` with no file open).
    pub fn deadline(&self) -> Option<SystemTime> {
        self.current.as_ref().map(|(_, end)| *end)
    }

    /// Complete the open file if its period has ended at `now`; returns its path.
    pub fn rotate_if_due(&mut self, now: SystemTime) -> Result<Option<PathBuf>, WriteError> {
        match &self.current {
            Some((_, end)) if now >= *end => self.close(),
            _ => Ok(None),
        }
    }

    /// Complete the open file, if any (at shutdown); returns its path.
    pub fn close(&mut self) -> Result<Option<PathBuf>, WriteError> {
        match self.current.take() {
            Some((writer, _)) => Ok(Some(writer.finish()?.finish()?)),
            None => Ok(None),
        }
    }

    fn open(&mut self, now: SystemTime) -> Result<&mut UpdateLogWriter<MrtFile>, WriteError> {
        if self.current.is_none() {
            let start = self.period.start_of(now);
            let file = MrtFile::create(self.pattern.render(start), self.compression)?;
            let end = self.period.next_after(now);
            self.current = Some((UpdateLogWriter::new(file), end));
        }
        match &mut self.current {
            Some((writer, _)) => Ok(writer),
            None => Err(WriteError::Invalid("no update log file open".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn patterns_render_in_utc_like_collectors_name_files() {
        let p = FileNamePattern::new("bview.%Y%m%d.%H%M.gz").unwrap();
        // 2002-07-22 23:37:00 UTC, the RIS table in tests/data.
        assert_eq!(
            p.render(at(1_027_381_020)),
            PathBuf::from("bview.20020722.2337.gz")
        );
        let all = FileNamePattern::new("%y-%j %S %s 100%%").unwrap();
        assert_eq!(
            all.render(at(1_027_381_021)),
            PathBuf::from("02-203 01 1027381021 100%")
        );
        // Leap day and the last day of a leap year.
        let ymd = FileNamePattern::new("%Y-%m-%d/%j").unwrap();
        assert_eq!(ymd.render(at(951_782_400)), PathBuf::from("2000-02-29/060"));
        assert_eq!(
            ymd.render(at(1_735_603_200)),
            PathBuf::from("2024-12-31/366")
        );
        assert_eq!(ymd.render(at(0)), PathBuf::from("1970-01-01/001"));
        assert_eq!(
            ymd.render(UNIX_EPOCH - Duration::from_secs(5)),
            PathBuf::from("1970-01-01/001")
        );
        assert_eq!(
            ymd.render(at(4_102_444_800)),
            PathBuf::from("2100-01-01/001")
        );
    }

    #[test]
    fn pattern_typos_are_refused() {
        assert!(FileNamePattern::new("bview.%Q").is_err());
        assert!(FileNamePattern::new("bview.%").is_err());
        assert_eq!(FileNamePattern::new("plain").unwrap().as_str(), "plain");
    }

    #[test]
    fn periods_align_on_the_epoch() {
        let eight_hours = Period::new(Duration::from_secs(8 * 3600)).unwrap();
        let t = at(1_027_381_020); // 23:37
        assert_eq!(
            eight_hours.start_of(t),
            at(1_027_381_020 - (7 * 3600 + 37 * 60))
        );
        assert_eq!(eight_hours.next_after(t), at(1_027_382_400)); // midnight
        assert_eq!(
            eight_hours.next_after(at(1_027_382_400)),
            at(1_027_382_400 + 8 * 3600)
        );
        assert!(Period::new(Duration::from_millis(999)).is_err());
    }

    #[test]
    fn compression_follows_the_file_name() {
        assert_eq!(
            Compression::for_path(Path::new("a/b.gz")),
            Compression::Gzip
        );
        assert_eq!(
            Compression::for_path(Path::new("b.bz2")),
            Compression::Bzip2
        );
        assert_eq!(Compression::for_path(Path::new("b.mrt")), Compression::None);
        assert_eq!(Compression::for_path(Path::new("b")), Compression::None);
    }
}
