//! Host bindings: one `bindgen!` per version of the `sluice:stage` package
//! the runner serves. WASI and `wasi:http` map onto wasmtime's own bindings
//! so that their implementations are reused, not regenerated.
//!
//! - [`v1`]: `sluice:stage@0.1.0` (`wit/stage.wit`): the world exports the
//!   functions `describe` and `run`.
//! - [`v2`]: `sluice:stage@0.2.0` (`wit/v0.2/`): the world exports the
//!   interface `plugin`, and imports `log`, `cancel` and exec's `process`.
//!
//! The rest of the host works with 0.2's types ([`wit`]); a 0.1 plugin's
//! values are converted at the call (see `sandbox`), 0.2 being a superset.

#![allow(missing_docs, clippy::all)]

/// `sluice:stage@0.1.0`.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sluice:stage/stage@0.1.0",
        imports: { default: async },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// `sluice:stage@0.2.0`.
pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2",
        world: "sluice:stage/stage@0.2.0",
        // Trappable: handing out a stream or a pollable pushes a resource,
        // which fails (and traps the guest) once it holds too many.
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "sluice:stage/exec.process": crate::exec_v2::Process,
        },
    });
}

pub use self::v1::sluice::stage::exec as wit_exec_v1;
pub use self::v1::sluice::stage::secrets as wit_secrets_v1;
pub use self::v1::sluice::stage::types as wit_v1;
pub use self::v2::sluice::stage::cancel as wit_cancel;
pub use self::v2::sluice::stage::exec as wit_exec;
pub use self::v2::sluice::stage::log as wit_log;
pub use self::v2::sluice::stage::secrets as wit_secrets;
pub use self::v2::sluice::stage::types as wit;
