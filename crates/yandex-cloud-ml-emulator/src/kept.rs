//! Parsing a dataset row keeping only what is stored: the task type's columns and, of each
//! `request` message, its `role` and `text`. Every other field is skipped by the parser
//! without being built, so a row with a huge ignored field costs its line, not a value tree
//! many times its size. What is kept is what [`rows::check_row`](crate::rows) looks at;
//! something that is not an object where one is expected is kept as an empty value of its
//! kind, enough to say what was wrong.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A parsed row and the messages of its `request`, for the estimate of what it costs in memory.
pub(crate) struct Kept {
    pub row: Value,
    pub messages: usize,
}

/// Parses one JSON line keeping the `columns` (and `request`, when `request` is set).
pub(crate) fn parse(text: &str, columns: &[&str], request: bool) -> serde_json::Result<Kept> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut messages = 0;
    let row = Row { columns, request, messages: &mut messages }.deserialize(&mut de)?;
    de.end()?;
    Ok(Kept { row, messages })
}

/// What a list or an object that is not kept turns into: an empty one, skipped unbuilt.
struct Shape;

impl<'de> Visitor<'de> for Shape {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Object(Map::new()))
    }
}

/// Reads an object keeping the fields `keep` says, each parsed by `value`; anything else is
/// a [`Shape`].
fn object<'de, A: MapAccess<'de>>(
    mut map: A,
    mut keep: impl FnMut(&str, &mut A) -> Result<Option<Value>, A::Error>,
) -> Result<Value, A::Error> {
    let mut kept = Map::new();
    while let Some(key) = map.next_key::<String>()? {
        match keep(&key, &mut map)? {
            Some(value) => {
                kept.insert(key, value);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(Value::Object(kept))
}

/// The scalars a row may wrongly be, as their shapes.
macro_rules! scalar_rows {
    () => {
        fn visit_bool<E: serde::de::Error>(self, x: bool) -> Result<Value, E> {
            Ok(Value::Bool(x))
        }
        fn visit_i64<E: serde::de::Error>(self, x: i64) -> Result<Value, E> {
            Ok(Value::from(x))
        }
        fn visit_u64<E: serde::de::Error>(self, x: u64) -> Result<Value, E> {
            Ok(Value::from(x))
        }
        fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Value, E> {
            Ok(Value::from(x))
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Value, E> {
            Ok(Value::String(String::new()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

struct Row<'a> {
    columns: &'a [&'a str],
    request: bool,
    messages: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let Row { columns, request, messages } = self;
        object(map, |key, map| {
            Ok(if request && key == "request" {
                Some(map.next_value_seed(Messages { count: &mut *messages })?)
            } else if columns.contains(&key) {
                Some(map.next_value::<Value>()?)
            } else {
                None
            })
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Shape.visit_seq(seq)
    }

    scalar_rows! {}
}

/// `request`: a list of messages, each kept as its role and text.
struct Messages<'a> {
    count: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Messages<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        while let Some(message) = seq.next_element_seed(Message)? {
            list.push(message);
        }
        *self.count += list.len();
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Shape.visit_map(map)
    }

    scalar_rows! {}
}

/// One message of `request`: its role and text.
struct Message;

impl<'de> DeserializeSeed<'de> for Message {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Message {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        object(map, |key, map| Ok(if key == "role" || key == "text" { Some(map.next_value::<Value>()?) } else { None }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Shape.visit_seq(seq)
    }

    scalar_rows! {}
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_stored_fields_are_kept() {
        let line = json!({
            "request": [{"role": "user", "text": "hi", "extra": [0, 0, 0]}, {"role": "assistant", "text": "yo"}],
            "response": "ok",
            "ignored": {"deep": [1, 2, {"x": "y"}]},
        })
        .to_string();
        let kept = parse(&line, &["response"], true).unwrap();
        assert_eq!(
            kept.row,
            json!({"request": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "yo"}], "response": "ok"})
        );
        assert_eq!(kept.messages, 2);
        // What is not an object keeps its kind, for the error message.
        assert_eq!(parse("[1, 2]", &["response"], true).unwrap().row, json!([]));
        assert_eq!(parse(r#"{"request": {"a": 1}}"#, &[], true).unwrap().row, json!({"request": {}}));
        assert_eq!(parse(r#"{"request": "text"}"#, &[], true).unwrap().row, json!({"request": ""}));
        assert!(parse(r#"{"request": [] } trailing"#, &[], true).is_err());
        assert!(parse(r#"{"ignored": [1, }"#, &[], true).is_err(), "skipped fields are still checked as JSON");
    }
}
