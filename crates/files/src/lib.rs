//! Files in and out, for every other sluice crate.
//!
//! Owns: reading files that come from users and plugins without trusting
//! them ([`fsutil::read_input_file`]: regular files only, size caps, BOM),
//! YAML resource limits ([`yaml_limits`]) and the position map from YAML
//! paths to lines and columns ([`locate`]), rustc-style rendering of errors
//! in those files ([`diagnostic`]), durable writes (atomic replace, fsync
//! of files and directories) and plain-word I/O errors (`ENOSPC` said as
//! "the disk is full").
//!
//! Must not depend on any other sluice crate, on wasmtime or on tokio: the
//! pipeline, trust and record crates all build on it.

pub mod diagnostic;
pub mod fsutil;
pub mod locate;
pub mod yaml_limits;
