//! The non-`run` subcommands: each takes parsed arguments, prints, and
//! returns an exit code (errors go back to `main` for printing).

pub mod agent;
pub mod agents;
pub mod approve;
pub mod artifacts;
pub mod gc;
pub mod inspect;
pub mod lock;
pub mod new;
pub mod oci;
pub mod runs;
pub mod stage_test;
pub mod trust;
pub mod validate;
