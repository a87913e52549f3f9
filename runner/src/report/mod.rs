//! What a user sees while a run goes: the engine's [`Event`]s rendered by
//! the [`console`] (people; live on a terminal, plain lines elsewhere) or
//! as JSON lines ([`json`], machines).

pub mod console;
pub mod json;
pub mod live;
pub mod summary;

pub use sluice_engine::report::{escape_controls, Event, LogLevel, Reporter};
