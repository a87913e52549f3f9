//! What a user sees while a run goes: the engine's [`Event`]s rendered by
//! the [`console`] (people) or as JSON lines ([`json`], machines).

pub mod console;
pub mod json;

pub use sluice_engine::report::{escape_controls, Event, Reporter};
