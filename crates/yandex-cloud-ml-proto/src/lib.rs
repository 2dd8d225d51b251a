//! Protobuf messages and gRPC stubs for the Yandex Cloud ML APIs, generated at build time
//! from the `.proto` files in the repository's `proto/` directory.
//!
//! This crate is the single generated layer shared by `yandex-cloud-ml-sdk` (client stubs,
//! feature `client`) and `yandex-cloud-ml-emulator` (server traits, feature `server`), so the
//! two can never drift apart. Application code should prefer the SDK's own types; these are
//! the escape hatch for exact wire access.

#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
}
pub use generated::*;

#[cfg(feature = "json")]
pub mod json;

/// gRPC paths (`/package.Service/Method`) of every RPC in the compiled `.proto` files, named
/// `SERVICE_METHOD` (e.g. [`TEXT_GENERATION_SERVICE_COMPLETION`](paths::TEXT_GENERATION_SERVICE_COMPLETION)).
pub mod paths {
    include!(concat!(env!("OUT_DIR"), "/method_paths.rs"));
}

/// Encoded `google.protobuf.FileDescriptorSet` of every compiled `.proto` file (with the
/// well-known types), for reflection and protobuf-JSON transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

/// Packs a message into `google.protobuf.Any` under its full protobuf name.
pub fn pack_any<M: prost::Name>(message: &M) -> prost_types::Any {
    prost_types::Any { type_url: M::type_url(), value: prost::Message::encode_to_vec(message) }
}

/// Unpacks `google.protobuf.Any` if it holds a message of type `M` (any type URL domain).
pub fn unpack_any<M: prost::Name + Default>(any: &prost_types::Any) -> Option<Result<M, prost::DecodeError>> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    (name == M::full_name()).then(|| M::decode(any.value.as_slice()))
}

pub use prost;
pub use prost_types;
pub use tonic;
