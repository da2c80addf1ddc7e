//! Time as the driver supplies it: the core never reads a clock.

use core::fmt;
use core::time::Duration;

/// A point in time, as the time elapsed since an epoch the driver chose
/// (when it started, say). Every method of [`Client`](crate::Client) that
/// needs the time takes one; deadlines come back as one.
///
/// It is a plain [`Duration`] underneath, so it needs neither an operating
/// system clock nor `std`: an embedded driver counts ticks since boot, a
/// test advances it by hand, `std` drivers take `Instant::elapsed()` of a
/// start instant. Arithmetic saturates: a timeout of `Duration::MAX` is a
/// deadline that never comes, never an overflow.
///
/// ```
/// use std::time::Duration;
/// use smtp_sansio::Timestamp;
///
/// let start = Timestamp::ZERO;
/// let deadline = start.saturating_add(Duration::from_secs(300));
/// assert_eq!(deadline.saturating_duration_since(start), Duration::from_secs(300));
/// assert_eq!(start.saturating_add(Duration::MAX), Timestamp::MAX);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The driver's epoch.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The farthest point in time: a deadline that never comes.
    pub const MAX: Self = Self(Duration::MAX);

    /// The point `since_epoch` after the driver's epoch.
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Self(since_epoch)
    }

    /// How long after the driver's epoch this is.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// This point moved `d` later, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::MAX {
            f.write_str("T+never")
        } else {
            write!(f, "T+{:?}", self.0)
        }
    }
}
