//! sdk
#[doc(hidden)]
pub mod bindings;
