//! The node's clock: the one place the shells read the time. The machines only see the value.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in µs since the Unix epoch. The shell reads the clock; the machine only sees the value.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
