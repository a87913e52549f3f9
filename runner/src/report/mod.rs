//! What a user sees while a run goes: the engine's [`Event`]s rendered by
//! the [`console`] (people; live on a terminal, plain lines elsewhere) or
//! as JSON lines ([`json`], machines).

pub mod console;
pub mod json;
pub mod live;
pub mod summary;

pub use sluice_engine::report::{escape_controls, Event, LogLevel, Reporter};

/// A `Write` into a buffer shared by its clones: the CI reporter renders
/// the console into one per stage group, and tests read what was printed.
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    /// What was written so far, as text (invalid UTF-8 shown as U+FFFD).
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}
