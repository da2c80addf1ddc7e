//! The quick test message (`--header`/`--body`) and the progress line.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Out;

const DEFAULT_BODY: &str = "This is a test message sent by smtp-send, \
the command-line example of the smtp-blocking crate.\n";

/// Builds a small RFC 5322 message with Date and Message-ID headers.
///
/// `headers` are `Name: value` strings; a value may not contain CR or LF
/// (that would inject headers), and a name must be printable ASCII without
/// spaces or colons. Line endings of `body` become CRLF.
pub(crate) fn compose(
    from: &str,
    to: &[String],
    headers: &[String],
    body: Option<&str>,
    id_domain: &str,
) -> Result<Vec<u8>, String> {
    let mut extra = Vec::with_capacity(headers.len());
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("--header {h:?}: expected 'Name: value'"));
        };
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !name_ok {
            return Err(format!("--header {h:?}: malformed header name"));
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(format!("--header {name}: CR, LF or NUL in the value"));
        }
        extra.push((name.to_owned(), value.trim().to_owned()));
    }
    let overridden = |n: &str| extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(n));
    let body = body.unwrap_or(DEFAULT_BODY);
    let ascii = body.is_ascii() && extra.iter().all(|(_, v)| v.is_ascii());

    let mut own: Vec<(&str, String)> = vec![
        ("Date", rfc5322_date(SystemTime::now())),
        ("From", from.to_owned()),
        ("To", to.join(", ")),
        ("Subject", "smtp-send test message".to_owned()),
        ("Message-ID", message_id(id_domain)),
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=utf-8".to_owned()),
        (
            "Content-Transfer-Encoding",
            if ascii { "7bit" } else { "8bit" }.to_owned(),
        ),
    ];
    // The null sender has no From header of its own.
    own.retain(|(n, v)| !overridden(n) && (*n != "From" || !v.is_empty()));

    let mut out = Vec::with_capacity(512 + body.len());
    for (name, value) in own
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for line in body.split_inclusive('\n') {
        let text = line.trim_end_matches('\n').trim_end_matches('\r');
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// `<time.pid.counter@domain>`: unique per process run and per message.
fn message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("<{nanos:x}.{}.{n}@{domain}>", std::process::id())
}

/// An RFC 5322 date in UTC, such as `Sat, 28 Nov 2026 18:50:07 +0000`.
pub(crate) fn rfc5322_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days` (proleptic Gregorian calendar).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Wraps the message reader and, for a message of at least
/// [`Progress::THRESHOLD`] bytes, keeps a `\r`-refreshed progress line on
/// stderr (only used when stderr is a terminal).
pub(crate) struct Progress<R> {
    inner: R,
    out: Option<Out>,
    total: Option<u64>,
    sent: u64,
    last: Option<Instant>,
    shown: bool,
}

impl<R: Read> Progress<R> {
    /// Messages smaller than this get no progress line.
    pub(crate) const THRESHOLD: u64 = 1 << 20;
    const EVERY: Duration = Duration::from_millis(200);

    /// `out` is `None` when no progress should be shown.
    pub(crate) fn new(inner: R, total: Option<u64>, out: Option<Out>) -> Self {
        Self {
            inner,
            out,
            total,
            sent: 0,
            last: None,
            shown: false,
        }
    }

    fn show(&mut self, done: bool) {
        let Some(out) = &self.out else { return };
        if self.sent < Self::THRESHOLD && !self.shown {
            return;
        }
        let now = Instant::now();
        if !done
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let mib = |n: u64| n as f64 / f64::from(1 << 20);
        let line = match self.total {
            Some(total) if total > 0 => format!(
                "\rsending message: {:.1} of {:.1} MiB ({}%)",
                mib(self.sent),
                mib(total),
                self.sent.saturating_mul(100) / total
            ),
            _ => format!("\rsending message: {:.1} MiB", mib(self.sent)),
        };
        out.write_str(&line);
        if done {
            out.write_str("\n");
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        self.show(n == 0);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_892_007);
        assert_eq!(rfc5322_date(t), "Sat, 28 Nov 2026 18:53:27 +0000");
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
