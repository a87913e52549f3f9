//! Being told to stop, through `sluice:stage/cancel`.
//!
//! The runner cancels a running stage when another stage fails under
//! fail-fast, when the run is interrupted, and at the stage's deadline. A
//! cancelled stage has [`Context::grace_period`](crate::Context::grace_period)
//! to put things back and return; then its instance is dropped wherever it
//! is. Whatever it returns after being cancelled, the stage is recorded as
//! cancelled.
//!
//! Check [`is_cancelled`] between units of work, and wait with [`sleep`]
//! instead of `std::thread::sleep` so that a wait ends when the stage is
//! cancelled:
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_sdk::cancel;
//!
//! # fn f() -> Result<(), sluice_sdk::StageError> {
//! for step in 1..=10 {
//!     if cancel::is_cancelled() {
//!         // put things back, then return
//!         break;
//!     }
//!     sluice_sdk::info!("step {step}");
//!     cancel::sleep(Duration::from_secs(30))?; // `?`: Cancelled becomes StageError::Failed
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use crate::error::StageError;

/// The stage was cancelled while it waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for StageError {
    /// [`StageError::Failed`] with the message `cancelled` (the runner
    /// records a cancelled stage as cancelled whatever it returns).
    fn from(_: Cancelled) -> Self {
        StageError::failed("cancelled")
    }
}

/// Whether the stage has been cancelled. Cheap; call it between units of
/// work. Always `false` outside a guest.
///
/// ```
/// if sluice_sdk::cancel::is_cancelled() {
///     // stop early
/// }
/// ```
pub fn is_cancelled() -> bool {
    imp::is_cancelled()
}

/// Waits `duration`, or less when the stage is cancelled meanwhile:
/// `Err(Cancelled)` then (also when it was cancelled already). Outside a
/// guest it just sleeps.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(sluice_sdk::cancel::sleep(Duration::from_millis(1)), Ok(()));
/// ```
pub fn sleep(duration: Duration) -> Result<(), Cancelled> {
    imp::sleep(duration)
}

/// A pollable that becomes ready once the stage is cancelled, to poll
/// together with the stage's own waits (`wasi:io/poll`). Only inside a
/// guest: outside one it panics.
///
/// ```no_run
/// let cancelled = sluice_sdk::cancel::subscribe();
/// cancelled.block(); // returns when the stage is cancelled
/// ```
pub fn subscribe() -> crate::bindings::wasi::io::poll::Pollable {
    crate::bindings::sluice::stage::cancel::subscribe()
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::time::Duration;

    use super::Cancelled;
    use crate::bindings::sluice::stage::cancel as wit;
    use crate::bindings::wasi::clocks::monotonic_clock;
    use crate::bindings::wasi::io::poll;

    pub(super) fn is_cancelled() -> bool {
        wit::is_cancelled()
    }

    pub(super) fn sleep(duration: Duration) -> Result<(), Cancelled> {
        if wit::is_cancelled() {
            return Err(Cancelled);
        }
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let timer = monotonic_clock::subscribe_duration(nanos);
        let cancelled = wit::subscribe();
        let ready = poll::poll(&[&timer, &cancelled]);
        // Index 1 is the cancel pollable; when both are ready, cancellation
        // wins so that the caller stops.
        if ready.contains(&1) || wit::is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Outside a guest nothing cancels the stage.
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::time::Duration;

    use super::Cancelled;

    pub(super) fn is_cancelled() -> bool {
        false
    }

    pub(super) fn sleep(duration: Duration) -> Result<(), Cancelled> {
        std::thread::sleep(duration);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_fails_the_stage() {
        assert_eq!(StageError::from(Cancelled), StageError::failed("cancelled"));
        assert!(!is_cancelled());
        assert_eq!(sleep(Duration::ZERO), Ok(()));
    }
}
