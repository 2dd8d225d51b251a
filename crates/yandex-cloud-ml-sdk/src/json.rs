//! JSON ↔ `google.protobuf.Struct` with SDK errors (the conversion itself lives in the proto
//! crate, shared with the emulator).

use prost_types::Struct;
use serde_json::Value;
pub(crate) use yandex_cloud_ml_proto::json::struct_to_value as from_struct;

use crate::error::{Error, Result};

/// Converts a JSON object to a `Struct`; anything else is rejected with `what` in the message.
pub(crate) fn to_struct(value: &Value, what: &str) -> Result<Struct> {
    match value {
        Value::Object(map) => Ok(yandex_cloud_ml_proto::json::object_to_struct(map)),
        other => Err(Error::invalid_input(format!("{what} must be a JSON object, got {}", json_type_name(other)))),
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn non_objects_are_rejected_with_the_field_name() {
        let e = to_struct(&json!([1]), "tool `sum` parameters").unwrap_err();
        assert_eq!(e.to_string(), "invalid input: tool `sum` parameters must be a JSON object, got an array");
    }
}
