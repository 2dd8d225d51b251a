//! JSON-schema handling of the synthetic model: checks that a schema is well formed and builds
//! an instance that validates against it, filled from the prompt where it can (numbers from
//! the prompt go into numeric fields and arrays, text into strings).

use serde_json::{Map, Value, json};

const KNOWN_TYPES: [&str; 7] = ["object", "array", "string", "integer", "number", "boolean", "null"];
const MAX_DEPTH: usize = 32;
/// Values built for one instance at most, so recursive schemas (`{"$ref": "#"}` twice per
/// level) cannot blow up.
const MAX_NODES: usize = 10_000;

/// What the prompt offers to fill the instance with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filler {
    numbers: Vec<f64>,
    text: String,
}

impl Filler {
    pub(crate) fn from_prompt(prompt: &str) -> Filler {
        Filler { numbers: numbers_in(prompt), text: prompt.trim().to_owned() }
    }
}

/// Numbers written in `text` (integers and decimals, with an optional minus sign).
pub(crate) fn numbers_in(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let negative = chars[i] == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if negative || chars[i].is_ascii_digit() {
            // Skip digits that are part of a word like "gpt4".
            if start > 0 && chars[start - 1].is_alphanumeric() {
                while i < chars.len() && chars[i].is_alphanumeric() {
                    i += 1;
                }
                continue;
            }
            i += usize::from(negative);
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let s: String = chars[start..i].iter().collect();
            if let Ok(n) = s.parse() {
                out.push(n);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Checks that `schema` is a usable JSON schema; the error names the offending path.
pub(crate) fn check(schema: &Value, path: &str) -> Result<(), String> {
    check_at(schema, path, 0)
}

fn check_at(schema: &Value, path: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: schema is nested too deeply"));
    }
    let obj = match schema {
        Value::Object(o) => o,
        Value::Bool(_) => return Ok(()),
        other => return Err(format!("{path}: a schema must be an object, got {other}")),
    };
    match obj.get("type") {
        None => {}
        Some(Value::String(t)) if KNOWN_TYPES.contains(&t.as_str()) => {}
        Some(Value::Array(ts))
            if !ts.is_empty() && ts.iter().all(|t| t.as_str().is_some_and(|t| KNOWN_TYPES.contains(&t))) => {}
        Some(other) => return Err(format!("{path}.type: unknown type {other}; use one of {}", KNOWN_TYPES.join(", "))),
    }
    if let Some(props) = obj.get("properties") {
        let Value::Object(props) = props else {
            return Err(format!("{path}.properties: must be an object"));
        };
        for (name, sub) in props {
            check_at(sub, &format!("{path}.properties.{name}"), depth + 1)?;
        }
    }
    if let Some(req) = obj.get("required")
        && !req.as_array().is_some_and(|r| r.iter().all(Value::is_string))
    {
        return Err(format!("{path}.required: must be an array of property names"));
    }
    if let Some(items) = obj.get("items") {
        check_at(items, &format!("{path}.items"), depth + 1)?;
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = obj.get(key) {
            let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
                return Err(format!("{path}.{key}: must be a non-empty array of schemas"));
            };
            for (i, sub) in list.iter().enumerate() {
                check_at(sub, &format!("{path}.{key}[{i}]"), depth + 1)?;
            }
        }
    }
    if let Some(e) = obj.get("enum")
        && e.as_array().is_none_or(|e| e.is_empty())
    {
        return Err(format!("{path}.enum: must be a non-empty array"));
    }
    for key in ["$defs", "definitions"] {
        if let Some(defs) = obj.get(key) {
            let Value::Object(defs) = defs else {
                return Err(format!("{path}.{key}: must be an object"));
            };
            for (name, sub) in defs {
                check_at(sub, &format!("{path}.{key}.{name}"), depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Builds an instance of `schema` (assumed to have passed [`check`]).
pub(crate) fn instance(schema: &Value, filler: &Filler) -> Value {
    let mut numbers = filler.numbers.iter().copied();
    let mut ctx = Ctx { root: schema, filler, numbers: &mut numbers, budget: MAX_NODES };
    build(schema, &mut ctx, 0)
}

struct Ctx<'a> {
    root: &'a Value,
    filler: &'a Filler,
    numbers: &'a mut dyn Iterator<Item = f64>,
    budget: usize,
}

fn build(schema: &Value, ctx: &mut Ctx<'_>, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else { return Value::Null };
    if depth > MAX_DEPTH || ctx.budget == 0 {
        return Value::Null;
    }
    ctx.budget -= 1;
    let root = ctx.root;
    let filler = ctx.filler;
    if let Some(r) = obj.get("$ref").and_then(Value::as_str)
        && let Some(target) = resolve_ref(root, r)
    {
        return build(target, ctx, depth + 1);
    }
    if let Some(c) = obj.get("const") {
        return c.clone();
    }
    if let Some(first) = obj.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = obj.get(key).and_then(Value::as_array) {
            let pick =
                options.iter().find(|o| o.get("type").and_then(Value::as_str) != Some("null")).or(options.first());
            if let Some(pick) = pick {
                return build(pick, ctx, depth + 1);
            }
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(o) = build(part, ctx, depth + 1) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") => "array",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), build(sub, ctx, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let items = obj.get("items").cloned().unwrap_or(json!({}));
            let item_type = items.get("type").and_then(Value::as_str);
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = obj.get("maxItems").and_then(Value::as_u64).map(|m| m as usize);
            let mut out = Vec::new();
            if matches!(item_type, Some("integer" | "number")) {
                // A numeric array takes every remaining number of the prompt.
                let integer = item_type == Some("integer");
                for n in &mut *ctx.numbers {
                    if max.is_some_and(|m| out.len() >= m) {
                        break;
                    }
                    if !integer || n.fract() == 0.0 {
                        out.push(clamp_number(&items, n, integer));
                    }
                }
            }
            let wanted = min.max(usize::from(out.is_empty()));
            while out.len() < wanted && max.is_none_or(|m| out.len() < m) {
                out.push(build(&items, ctx, depth + 1));
            }
            Value::Array(out)
        }
        "integer" => clamp_number(schema, ctx.numbers.next().unwrap_or(0.0).trunc(), true),
        "number" => clamp_number(schema, ctx.numbers.next().unwrap_or(0.0), false),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(string_for(obj, filler)),
    }
}

fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

fn clamp_number(schema: &Value, n: f64, integer: bool) -> Value {
    let mut n = n;
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        n = n.max(min);
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        n = n.min(max);
    }
    if integer { json!(n.round() as i64) } else { json!(n) }
}

fn string_for(schema: &Map<String, Value>, filler: &Filler) -> String {
    match schema.get("format").and_then(Value::as_str) {
        Some("date") => return "2026-01-01".into(),
        Some("date-time") => return "2026-01-01T00:00:00Z".into(),
        Some("email") => return "user@example.com".into(),
        Some("uri") => return "https://example.com".into(),
        _ => {}
    }
    let mut s = if filler.text.is_empty() { "text".to_owned() } else { filler.text.clone() };
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        s = s.chars().take(max as usize).collect();
    }
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    while s.chars().count() < min {
        s.push('x');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers_schema() -> Value {
        json!({"title": "Numbers", "type": "object",
               "properties": {"numbers": {"title": "Numbers", "type": "array", "items": {"type": "integer"}}},
               "required": ["numbers"]})
    }

    #[test]
    fn fills_numeric_arrays_from_the_prompt() {
        let filler = Filler::from_prompt("collect all numbers from: 5, 4, a, 1");
        assert_eq!(instance(&numbers_schema(), &filler), json!({"numbers": [5, 4, 1]}));
    }

    #[test]
    fn extracts_numbers_but_not_digits_inside_words() {
        assert_eq!(numbers_in("gpt4 says -3 and 2.5, then 10"), vec![-3.0, 2.5, 10.0]);
    }

    #[test]
    fn handles_refs_enums_nullable_and_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "kind": {"enum": ["a", "b"]},
                "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
                "age": {"type": "integer", "minimum": 18},
                "pet": {"$ref": "#/$defs/Pet"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 2}
            },
            "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}}
        });
        let v = instance(&schema, &Filler::from_prompt("hello"));
        assert_eq!(v, json!({"kind": "a", "maybe": true, "age": 18, "pet": {"name": "hello"}, "tags": ["hel", "hel"]}));
    }

    #[test]
    fn recursive_schemas_stay_bounded() {
        let schema = json!({"type": "object", "properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}}});
        let started = std::time::Instant::now();
        let v = instance(&schema, &Filler::default());
        assert!(v.is_object());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn malformed_schemas_are_reported_with_a_path() {
        assert!(check(&json!({"type": "object"}), "s").is_ok());
        assert_eq!(
            check(&json!({"type": "object", "properties": {"x": {"type": "strng"}}}), "json_schema.schema")
                .unwrap_err(),
            "json_schema.schema.properties.x.type: unknown type \"strng\"; use one of object, array, string, integer, number, boolean, null"
        );
        assert!(check(&json!({"properties": []}), "s").unwrap_err().contains("s.properties: must be an object"));
        assert!(check(&json!({"required": "x"}), "s").unwrap_err().contains("required"));
        assert!(check(&json!(5), "s").unwrap_err().contains("must be an object"));
    }
}
