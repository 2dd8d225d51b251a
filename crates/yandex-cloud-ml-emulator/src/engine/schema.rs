//! JSON-schema handling of the synthetic model: checks that a schema is well formed and builds
//! an instance that validates against it, filled from the prompt where it can (numbers from
//! the prompt go into numeric fields and arrays, text into strings).

use serde_json::{Map, Value, json};

const KNOWN_TYPES: [&str; 7] = ["object", "array", "string", "integer", "number", "boolean", "null"];
/// Deepest schema accepted by [`check`].
const MAX_DEPTH: usize = 32;

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
                // Past the sign or digit first: "x-5" must not stop the scan on its `-`.
                i += 1;
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

/// How much one generated instance may hold. Every keyword that makes instances bigger
/// (`minItems`, `minLength`, `minProperties`, nesting, `$ref`) draws from the same budget, and
/// each value is built once, so generation is linear in the instance it returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes of the serialized instance.
    pub bytes: usize,
    /// Values (objects, arrays, strings, numbers, …).
    pub values: usize,
    /// Nesting of objects and arrays.
    pub depth: usize,
}

/// The emulator's budget: far above real answers, far below what hurts the process.
pub(crate) const BUDGET: Budget = Budget { bytes: 256 * 1024, values: 20_000, depth: 20 };

/// Longest prompt text put into one string (strings are filled from the prompt).
const MAX_FILL_CHARS: usize = 200;

/// Builds an instance of `schema` (assumed to have passed [`check`]). A schema whose smallest
/// instance does not fit the budget is an error naming the keyword at `path`.
pub(crate) fn instance(schema: &Value, filler: &Filler, path: &str) -> Result<Value, String> {
    let mut numbers = filler.numbers.iter().copied();
    let text: String = filler.text.chars().take(MAX_FILL_CHARS).collect();
    let mut ctx = Ctx { root: schema, text: &text, numbers: &mut numbers, bytes: BUDGET.bytes, values: BUDGET.values };
    build(schema, &mut ctx, 0, path)
}

struct Ctx<'a> {
    root: &'a Value,
    text: &'a str,
    numbers: &'a mut dyn Iterator<Item = f64>,
    bytes: usize,
    values: usize,
}

impl Ctx<'_> {
    fn charge(&mut self, bytes: usize, path: &str) -> Result<(), String> {
        if self.values == 0 || self.bytes < bytes {
            return Err(too_big(path));
        }
        self.values -= 1;
        self.bytes -= bytes;
        Ok(())
    }

    /// Whether optional parts (properties not required) still fit comfortably.
    fn roomy(&self, depth: usize) -> bool {
        depth < 6 && self.bytes > BUDGET.bytes / 2 && self.values > BUDGET.values / 2
    }
}

fn too_big(path: &str) -> String {
    format!(
        "{path}: the smallest instance of this schema is larger than the emulator generates \
         ({} KiB, {} values); lower the bound",
        BUDGET.bytes / 1024,
        BUDGET.values
    )
}

/// A non-negative count keyword (`minItems`, …); fractional or huge values count as huge.
fn count(obj: &Map<String, Value>, key: &str) -> Option<usize> {
    let v = obj.get(key)?.as_f64()?;
    Some(if v <= 0.0 {
        0
    } else if v >= usize::MAX as f64 {
        usize::MAX
    } else {
        v.ceil() as usize
    })
}

fn build(schema: &Value, ctx: &mut Ctx<'_>, depth: usize, path: &str) -> Result<Value, String> {
    let Some(obj) = schema.as_object() else { return Ok(Value::Null) };
    if depth > BUDGET.depth {
        return Err(format!(
            "{path}: instances nest deeper than {} levels (through properties, items or $ref)",
            BUDGET.depth
        ));
    }
    let root = ctx.root;
    if let Some(r) = obj.get("$ref").and_then(Value::as_str)
        && let Some(target) = resolve_ref(root, r)
    {
        return build(target, ctx, depth + 1, &format!("{path}.$ref"));
    }
    if let Some(c) = obj.get("const") {
        ctx.charge(c.to_string().len(), &format!("{path}.const"))?;
        return Ok(c.clone());
    }
    if let Some(first) = obj.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        ctx.charge(first.to_string().len(), &format!("{path}.enum"))?;
        return Ok(first.clone());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = obj.get(key).and_then(Value::as_array) {
            let pick = options.iter().position(|o| o.get("type").and_then(Value::as_str) != Some("null")).unwrap_or(0);
            if let Some(option) = options.get(pick) {
                return build(option, ctx, depth + 1, &format!("{path}.{key}[{pick}]"));
            }
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for (i, part) in all.iter().enumerate() {
            if let Value::Object(o) = build(part, ctx, depth + 1, &format!("{path}.allOf[{i}]"))? {
                merged.extend(o);
            }
        }
        return Ok(Value::Object(merged));
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") => "array",
        _ => "string",
    };
    match ty {
        "object" => object(obj, ctx, depth, path),
        "array" => array(obj, ctx, depth, path),
        "integer" => {
            ctx.charge(20, path)?;
            Ok(clamp_number(schema, ctx.numbers.next().unwrap_or(0.0).trunc(), true))
        }
        "number" => {
            ctx.charge(24, path)?;
            Ok(clamp_number(schema, ctx.numbers.next().unwrap_or(0.0), false))
        }
        "boolean" => {
            ctx.charge(5, path)?;
            Ok(Value::Bool(true))
        }
        "null" => {
            ctx.charge(4, path)?;
            Ok(Value::Null)
        }
        _ => string(obj, ctx, path).map(Value::String),
    }
}

fn object(obj: &Map<String, Value>, ctx: &mut Ctx<'_>, depth: usize, path: &str) -> Result<Value, String> {
    ctx.charge(2, path)?;
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let min = count(obj, "minProperties").unwrap_or(0);
    if min > ctx.values {
        return Err(too_big(&format!("{path}.minProperties")));
    }
    let mut out = Map::new();
    let properties = obj.get("properties").and_then(Value::as_object);
    for (name, sub) in properties.into_iter().flatten() {
        if required.contains(&name.as_str()) || ctx.roomy(depth) || out.len() < min {
            let value = build(sub, ctx, depth + 1, &format!("{path}.properties.{name}"))?;
            ctx.charge(name.len() + 4, path)?;
            out.insert(name.clone(), value);
        }
    }
    // Reach minProperties with extra properties where the schema allows them.
    let extra = match obj.get("additionalProperties") {
        Some(Value::Bool(false)) => None,
        Some(s @ Value::Object(_)) => Some(s.clone()),
        _ => Some(json!({"type": "string"})),
    };
    let mut n = 0;
    while out.len() < min {
        let Some(schema) = &extra else { break };
        n += 1;
        let name = format!("property{n}");
        if out.contains_key(&name) {
            continue;
        }
        let value = build(schema, ctx, depth + 1, &format!("{path}.minProperties"))?;
        ctx.charge(name.len() + 4, &format!("{path}.minProperties"))?;
        out.insert(name, value);
    }
    Ok(Value::Object(out))
}

fn array(obj: &Map<String, Value>, ctx: &mut Ctx<'_>, depth: usize, path: &str) -> Result<Value, String> {
    ctx.charge(2, path)?;
    let items = obj.get("items").cloned().unwrap_or(json!({}));
    let item_type = items.get("type").and_then(Value::as_str);
    let min = count(obj, "minItems").unwrap_or(0);
    let max = count(obj, "maxItems");
    if min > ctx.values {
        return Err(too_big(&format!("{path}.minItems")));
    }
    let mut out = Vec::new();
    if matches!(item_type, Some("integer" | "number")) {
        // A numeric array takes every remaining number of the prompt.
        let integer = item_type == Some("integer");
        while max.is_none_or(|m| out.len() < m) && ctx.roomy(0) {
            let Some(n) = ctx.numbers.next() else { break };
            if !integer || n.fract() == 0.0 {
                ctx.charge(24, &format!("{path}.items"))?;
                out.push(clamp_number(&items, n, integer));
            }
        }
    }
    let wanted = min.max(usize::from(out.is_empty()));
    let item_path = format!("{path}.items");
    while out.len() < wanted && max.is_none_or(|m| out.len() < m) {
        let value = build(&items, ctx, depth + 1, &item_path)
            .map_err(|e| if out.len() < min { format!("{e} (needed for {path}.minItems)") } else { e })?;
        ctx.charge(1, &format!("{path}.minItems"))?;
        out.push(value);
    }
    Ok(Value::Array(out))
}

fn string(obj: &Map<String, Value>, ctx: &mut Ctx<'_>, path: &str) -> Result<String, String> {
    let mut s = match obj.get("format").and_then(Value::as_str) {
        Some("date") => "2026-01-01".to_owned(),
        Some("date-time") => "2026-01-01T00:00:00Z".to_owned(),
        Some("email") => "user@example.com".to_owned(),
        Some("uri") => "https://example.com".to_owned(),
        _ if ctx.text.is_empty() => "text".to_owned(),
        _ => ctx.text.to_owned(),
    };
    if let Some(max) = count(obj, "maxLength") {
        s = s.chars().take(max).collect();
    }
    let min = count(obj, "minLength").unwrap_or(0);
    let have = s.chars().count();
    let missing = min.saturating_sub(have);
    if missing > ctx.bytes {
        return Err(too_big(&format!("{path}.minLength")));
    }
    s.extend(std::iter::repeat_n('x', missing));
    ctx.charge(s.len() + 2, path)?;
    Ok(s)
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
        assert_eq!(instance(&numbers_schema(), &filler, "s").unwrap(), json!({"numbers": [5, 4, 1]}));
    }

    #[test]
    fn extracts_numbers_but_not_digits_inside_words() {
        assert_eq!(numbers_in("gpt4 says -3 and 2.5, then 10"), vec![-3.0, 2.5, 10.0]);
        // A sign glued to a word is skipped, not looped on forever.
        assert_eq!(numbers_in("x-5 and a-b-7, then 8"), vec![8.0]);
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
        let v = instance(&schema, &Filler::from_prompt("hello"), "s").unwrap();
        assert_eq!(v, json!({"kind": "a", "maybe": true, "age": 18, "pet": {"name": "hello"}, "tags": ["hel", "hel"]}));
    }

    #[test]
    fn recursive_schemas_stay_bounded() {
        // Optional recursion stops where the budget gets tight; the instance stays valid.
        let schema = json!({"type": "object", "properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}}});
        let v = instance(&schema, &Filler::default(), "s").unwrap();
        assert!(v.is_object());
        assert!(v.to_string().len() <= BUDGET.bytes);
        // Required recursion can never end: an error names where.
        let endless = json!({"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}});
        let e = instance(&endless, &Filler::default(), "s").unwrap_err();
        assert!(e.contains("nest deeper than 20 levels"), "{e}");
    }

    #[test]
    fn hostile_sizes_are_rejected_naming_the_keyword_and_never_built() {
        let filler = Filler::from_prompt(&"long prompt ".repeat(4000));
        for (schema, keyword) in [
            (json!({"type": "array", "minItems": 1e12}), "s.minItems"),
            (json!({"type": "array", "minItems": 1e300}), "s.minItems"),
            (json!({"type": "string", "minLength": 1_000_000}), "s.minLength"),
            (json!({"type": "object", "minProperties": 1e9}), "s.minProperties"),
            (json!({"type": "array", "items": {"type": "string"}, "minItems": 19_000}), "s.minItems"),
        ] {
            let started = std::time::Instant::now();
            let e = instance(&schema, &filler, "s").unwrap_err();
            assert!(e.contains(keyword), "{schema}: {e}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        // Within the budget they are honoured.
        let v = instance(&json!({"type": "string", "minLength": 50_000}), &filler, "s").unwrap();
        assert_eq!(v.as_str().unwrap().chars().count(), 50_000);
        let v = instance(&json!({"type": "object", "minProperties": 3}), &filler, "s").unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3);
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
