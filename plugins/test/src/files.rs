//! Workspace file lookup, shared with other stages through the SDK.
pub use sluice_sdk::workspace::*;
