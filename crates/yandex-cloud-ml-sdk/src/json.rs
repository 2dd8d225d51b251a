//! JSON ↔ `google.protobuf.Struct` with SDK errors (the conversion itself lives in the proto
//! crate, shared with the emulator).

use prost_types::Struct;
use serde_json::Value;

use crate::error::{Error, Result};

/// A `Struct` received from the server as JSON. Decoded messages are never deeper than the
/// conversion allows (see `MAX_DECODED_DEPTH`), so the fallback is unreachable in practice.
pub(crate) fn from_struct(s: &Struct) -> Value {
    yandex_cloud_ml_proto::json::struct_to_value(s).unwrap_or(Value::Null)
}

/// Converts a JSON object to a `Struct`; anything else is rejected with `what` in the message.
pub(crate) fn to_struct(value: &Value, what: &str) -> Result<Struct> {
    match value {
        Value::Object(map) => yandex_cloud_ml_proto::json::object_to_struct(map).map_err(|e| {
            Error::invalid_input(format!("{what} is {e}: flatten it (the API cannot carry deeper documents)"))
        }),
        other => Err(Error::invalid_input(format!("{what} must be a JSON object, got {}", json_type_name(other)))),
    }
}

/// The JSON schema of `T` in the portable shape the official SDK sends for a pydantic model:
/// `title` on the root, on every definition and on every property (the field name, title-cased
/// like pydantic does), no `$schema` key, and no numeric `format` annotations (`int64`,
/// `double`, …) that schemars adds but the cloud was never shown to accept.
#[cfg(feature = "schemars")]
pub(crate) fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut schema = schemars::schema_for!(T).to_value();
    if let Value::Object(root) = &mut schema {
        root.remove("$schema");
        if let Some(Value::Object(defs)) = root.get_mut("$defs") {
            for (name, def) in defs.iter_mut() {
                if let Value::Object(def) = def {
                    def.entry("title").or_insert_with(|| Value::String(name.clone()));
                }
            }
        }
    }
    portable(&mut schema);
    schema
}

#[cfg(feature = "schemars")]
fn portable(node: &mut Value) {
    const NUMERIC_FORMATS: [&str; 12] =
        ["int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32", "uint64", "float", "double"];
    match node {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str).is_some_and(|f| NUMERIC_FORMATS.contains(&f) || f == "uint128")
            {
                map.remove("format");
            }
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if let Value::Object(p) = property
                        && !p.contains_key("$ref")
                    {
                        p.entry("title").or_insert_with(|| Value::String(pydantic_title(name)));
                    }
                }
            }
            map.values_mut().for_each(portable);
        }
        Value::Array(items) => items.iter_mut().for_each(portable),
        _ => {}
    }
}

/// `first_name` → `First Name`, as Python's `name.replace('_', ' ').title()`.
#[cfg(feature = "schemars")]
fn pydantic_title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word_start = true;
    for c in name.replace('_', " ").chars() {
        if c.is_alphabetic() {
            if word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            word_start = false;
        } else {
            out.push(c);
            word_start = true;
        }
    }
    out
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

    #[cfg(feature = "schemars")]
    #[test]
    fn schemas_of_rust_types_have_the_portable_pydantic_shape() {
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Numbers {
            numbers: Vec<i64>,
        }
        // What the official SDK sent for `class Numbers(BaseModel): numbers: list[int]`.
        assert_eq!(
            schema_of::<Numbers>(),
            json!({"title": "Numbers", "type": "object", "required": ["numbers"],
                   "properties": {"numbers": {"title": "Numbers", "type": "array", "items": {"type": "integer"}}}})
        );
        assert_eq!(pydantic_title("first_name"), "First Name");
        assert_eq!(pydantic_title("userID"), "Userid");
    }

    #[test]
    fn deep_documents_are_rejected_not_overflowing_the_stack() {
        let mut v = json!(1);
        for _ in 0..10_000 {
            let mut map = serde_json::Map::new();
            map.insert("a".into(), v);
            v = Value::Object(map);
        }
        let e = to_struct(&v, "response_format JSON schema").unwrap_err();
        assert!(e.to_string().contains("nested deeper than 30 levels"), "{e}");
        // Dropping the 10,000-level value recursively is itself deep; leak it in the test.
        std::mem::forget(v);
    }
}
