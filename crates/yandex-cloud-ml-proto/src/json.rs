//! Conversion between `serde_json::Value` and `google.protobuf.Struct`/`Value`.
//!
//! `Struct` numbers are doubles. Going to JSON, integral doubles that an `f64` represents
//! exactly (|x| ≤ 2^53) become JSON integers, so `{"numbers": [5.0, 4.0]}` from the wire
//! deserializes into integer types.

use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::{Map, Number, Value};

/// Converts a JSON object to a `Struct`.
pub fn object_to_struct(map: &Map<String, Value>) -> Struct {
    Struct { fields: map.iter().map(|(k, v)| (k.clone(), to_proto_value(v))).collect() }
}

/// Converts any JSON value to a `google.protobuf.Value` (numbers become doubles).
pub fn to_proto_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(to_proto_value).collect() }),
        Value::Object(map) => Kind::StructValue(object_to_struct(map)),
    };
    PbValue { kind: Some(kind) }
}

/// Converts a `Struct` to a JSON object.
pub fn struct_to_value(s: &Struct) -> Value {
    Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), from_proto_value(v))).collect())
}

/// Converts a `google.protobuf.Value` to JSON.
pub fn from_proto_value(value: &PbValue) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_proto_value).collect()),
        Some(Kind::StructValue(s)) => struct_to_value(s),
    }
}

fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip_keeps_structure_and_turns_integral_doubles_into_integers() {
        let v = json!({"numbers": [5.0, 4, 1.5], "s": "x", "b": true, "n": null, "o": {"k": []}});
        let Value::Object(map) = &v else { unreachable!() };
        let back = struct_to_value(&object_to_struct(map));
        assert_eq!(back, json!({"numbers": [5, 4, 1.5], "s": "x", "b": true, "n": null, "o": {"k": []}}));
    }

    #[test]
    fn huge_and_fractional_numbers_stay_doubles() {
        assert_eq!(number(1e300), json!(1e300));
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(number(-3.0), json!(-3));
        assert_eq!(number(f64::NAN), Value::Null);
    }
}
