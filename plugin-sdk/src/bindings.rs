//! Guest bindings generated from `wit/v0.2` (world `sluice:stage/stage@0.2.0`).
//!
//! Only the interfaces the SDK calls are generated: the sluice interfaces,
//! `wasi:http`, and the `wasi:io` / `wasi:clocks` types they use
//! (`wall-clock` because `types` uses its `datetime`). Rust's standard
//! library already binds `wasi:cli`, `wasi:filesystem`, `wasi:random` and
//! `wasi:sockets` itself, so those are mapped to an empty module and never
//! generated. The component's imports are decided by what the final program
//! calls, not by this list.
//!
//! This module is public only so that [`export_stage!`](crate::export_stage)
//! can reach it from the plugin crate; it is not part of the SDK's API.

#![allow(
    missing_docs,
    unsafe_code,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used
)]

/// Target for WASI interfaces the SDK does not bind itself (std does).
pub mod not_generated {}

wit_bindgen::generate!({
    world: "stage",
    path: "../wit/v0.2",
    with: {
        "sluice:stage/types@0.2.0": generate,
        "sluice:stage/log@0.2.0": generate,
        "sluice:stage/exec@0.2.0": generate,
        "sluice:stage/secrets@0.2.0": generate,
        "sluice:stage/cancel@0.2.0": generate,
        "sluice:stage/plugin@0.2.0": generate,
        "wasi:http/types@0.2.12": generate,
        "wasi:http/outgoing-handler@0.2.12": generate,
        "wasi:io/error@0.2.12": generate,
        "wasi:io/poll@0.2.12": generate,
        "wasi:io/streams@0.2.12": generate,
        "wasi:clocks/monotonic-clock@0.2.12": generate,
        "wasi:clocks/wall-clock@0.2.12": generate,
        "wasi:cli/environment@0.2.12": crate::bindings::not_generated,
        "wasi:cli/exit@0.2.12": crate::bindings::not_generated,
        "wasi:cli/stdin@0.2.12": crate::bindings::not_generated,
        "wasi:cli/stdout@0.2.12": crate::bindings::not_generated,
        "wasi:cli/stderr@0.2.12": crate::bindings::not_generated,
        "wasi:cli/terminal-input@0.2.12": crate::bindings::not_generated,
        "wasi:cli/terminal-output@0.2.12": crate::bindings::not_generated,
        "wasi:cli/terminal-stdin@0.2.12": crate::bindings::not_generated,
        "wasi:cli/terminal-stdout@0.2.12": crate::bindings::not_generated,
        "wasi:cli/terminal-stderr@0.2.12": crate::bindings::not_generated,
        "wasi:filesystem/types@0.2.12": crate::bindings::not_generated,
        "wasi:filesystem/preopens@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/network@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/instance-network@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/udp@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/udp-create-socket@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/tcp@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/tcp-create-socket@0.2.12": crate::bindings::not_generated,
        "wasi:sockets/ip-name-lookup@0.2.12": crate::bindings::not_generated,
        "wasi:random/random@0.2.12": crate::bindings::not_generated,
        "wasi:random/insecure@0.2.12": crate::bindings::not_generated,
        "wasi:random/insecure-seed@0.2.12": crate::bindings::not_generated,
    },
    pub_export_macro: true,
    export_macro_name: "__export_stage_world",
    default_bindings_module: "::sluice_sdk::bindings",
});
