//! Conversion between `serde_json::Value` and `google.protobuf.Struct`/`Value`, bounded in
//! depth in both directions so a hostile or accidental deeply nested document is an error,
//! never a stack overflow.
//!
//! `Struct` numbers are doubles. Going to JSON, integral doubles that an `f64` represents
//! exactly (|x| ≤ 2^53) become JSON integers, so `{"numbers": [5.0, 4.0]}` from the wire
//! deserializes into integer types.

use std::fmt;

use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::{Map, Number, Value};

/// Deepest nesting of objects and arrays converted to protobuf. Every JSON level costs
/// protobuf decoders two or three message levels (`Struct`, map entry, `Value`), and the
/// cloud's decoders, like prost, stop at 100 levels, so deeper documents could not be
/// delivered anyway.
pub const MAX_DEPTH: usize = 30;

/// Deepest nesting converted from protobuf: more than any decoded message can hold (prost
/// stops at 100 message levels, at least two per JSON level), so only values built in memory
/// can exceed it.
pub const MAX_DECODED_DEPTH: usize = 64;

/// A document nested deeper than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The limit that was exceeded.
    pub limit: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nested deeper than {} levels of objects and arrays", self.limit)
    }
}

impl std::error::Error for TooDeep {}

/// Converts a JSON object to a `Struct`.
pub fn object_to_struct(map: &Map<String, Value>) -> Result<Struct, TooDeep> {
    object_at(map, 1)
}

/// Converts any JSON value to a `google.protobuf.Value` (numbers become doubles).
pub fn to_proto_value(value: &Value) -> Result<PbValue, TooDeep> {
    value_at(value, 0)
}

const TOO_DEEP: TooDeep = TooDeep { limit: MAX_DEPTH };
const TOO_DEEP_DECODED: TooDeep = TooDeep { limit: MAX_DECODED_DEPTH };

fn object_at(map: &Map<String, Value>, depth: usize) -> Result<Struct, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TOO_DEEP);
    }
    let fields = map.iter().map(|(k, v)| Ok((k.clone(), value_at(v, depth)?))).collect::<Result<_, TooDeep>>()?;
    Ok(Struct { fields })
}

fn value_at(value: &Value, depth: usize) -> Result<PbValue, TooDeep> {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(TOO_DEEP);
            }
            let values = items.iter().map(|v| value_at(v, depth + 1)).collect::<Result<_, TooDeep>>()?;
            Kind::ListValue(ListValue { values })
        }
        Value::Object(map) => Kind::StructValue(object_at(map, depth + 1)?),
    };
    Ok(PbValue { kind: Some(kind) })
}

/// Converts a `Struct` to a JSON object.
pub fn struct_to_value(s: &Struct) -> Result<Value, TooDeep> {
    struct_at(s, 1)
}

/// Converts a `google.protobuf.Value` to JSON.
pub fn from_proto_value(value: &PbValue) -> Result<Value, TooDeep> {
    proto_value_at(value, 0)
}

fn struct_at(s: &Struct, depth: usize) -> Result<Value, TooDeep> {
    if depth > MAX_DECODED_DEPTH {
        return Err(TOO_DEEP_DECODED);
    }
    let map =
        s.fields.iter().map(|(k, v)| Ok((k.clone(), proto_value_at(v, depth)?))).collect::<Result<_, TooDeep>>()?;
    Ok(Value::Object(map))
}

fn proto_value_at(value: &PbValue, depth: usize) -> Result<Value, TooDeep> {
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => {
            if depth + 1 > MAX_DECODED_DEPTH {
                return Err(TOO_DEEP_DECODED);
            }
            Value::Array(l.values.iter().map(|v| proto_value_at(v, depth + 1)).collect::<Result<_, TooDeep>>()?)
        }
        Some(Kind::StructValue(s)) => struct_at(s, depth + 1)?,
    })
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
        let back = struct_to_value(&object_to_struct(map).unwrap()).unwrap();
        assert_eq!(back, json!({"numbers": [5, 4, 1.5], "s": "x", "b": true, "n": null, "o": {"k": []}}));
    }

    #[test]
    fn huge_and_fractional_numbers_stay_doubles() {
        assert_eq!(number(1e300), json!(1e300));
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(number(-3.0), json!(-3));
        assert_eq!(number(f64::NAN), Value::Null);
    }

    fn nested(depth: usize, array: bool) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = if array { json!([v]) } else { json!({"a": v}) };
        }
        v
    }

    #[test]
    fn depth_is_bounded_in_both_directions_without_overflowing_the_stack() {
        for array_inside in [false, true] {
            let mut ok = nested(MAX_DEPTH - 1, array_inside);
            ok = json!({"top": ok});
            let Value::Object(map) = &ok else { unreachable!() };
            let s = object_to_struct(map).unwrap();
            assert_eq!(struct_to_value(&s).unwrap(), ok);
            let too_deep = json!({"top": nested(MAX_DEPTH, array_inside)});
            let Value::Object(map) = &too_deep else { unreachable!() };
            assert_eq!(object_to_struct(map), Err(TooDeep { limit: MAX_DEPTH }));
        }
        // Deep wire values are refused too (built directly, as a decoder would).
        let mut v = PbValue { kind: Some(Kind::NumberValue(1.0)) };
        for _ in 0..10_000 {
            v = PbValue { kind: Some(Kind::ListValue(ListValue { values: vec![v] })) };
        }
        assert_eq!(from_proto_value(&v), Err(TooDeep { limit: MAX_DECODED_DEPTH }));
        // Dropping 10,000 nested values recursively is itself deep; leak it in the test.
        std::mem::forget(v);
    }
}
