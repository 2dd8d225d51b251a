//! Protobuf JSON for any message of the API, through a descriptor pool built from the
//! compiled `.proto` files (used by the request journal and the cassette replay server).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::Value;

/// The descriptor pool of every message the API uses.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(yandex_cloud_ml_proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set is valid")
    })
}

pub(crate) fn descriptor(type_name: &str) -> Result<MessageDescriptor, String> {
    pool().get_message_by_name(type_name).ok_or_else(|| format!("unknown message type {type_name}"))
}

/// Decodes `bytes` as `type_name` and renders protobuf JSON (camelCase, defaults omitted).
pub(crate) fn to_json(type_name: &str, bytes: &[u8]) -> Result<Value, String> {
    let message = DynamicMessage::decode(descriptor(type_name)?, bytes).map_err(|e| e.to_string())?;
    serde_json::to_value(&message).map_err(|e| e.to_string())
}

/// Parses protobuf JSON as `type_name` and encodes it.
pub(crate) fn from_json(type_name: &str, json: &Value) -> Result<Vec<u8>, String> {
    let message = DynamicMessage::deserialize(descriptor(type_name)?, json.clone()).map_err(|e| e.to_string())?;
    Ok(prost::Message::encode_to_vec(&message))
}
