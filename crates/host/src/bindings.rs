//! Host bindings generated from `wit/stage.wit` (one `bindgen!` for the
//! whole runner). WASI and `wasi:http` map onto wasmtime's own bindings so
//! that their implementations are reused, not regenerated.

#![allow(missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "sluice:stage/stage",
    imports: { default: async },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

pub use self::sluice::stage::exec as wit_exec;
pub use self::sluice::stage::secrets as wit_secrets;
pub use self::sluice::stage::types as wit;
