//! Checks the server's answers against the checked-in OpenAPI document
//! (`docs/openapi.json`): the operation (method and path template) and the
//! status must be described, and a body must match the schema given for
//! its media type, with unknown object members refused.
//!
//! Every answer read through [`super::Http`] (and the reliability suite's
//! raw exchanges) passes [`check_answer`]. A mismatch fails the test; with
//! `PORTCULLIS_OPENAPI_MISMATCHES=FILE` it is appended to `FILE` instead,
//! so that one run can list them all.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The APIs whose answers are checked: admin, account and token (OAuth
/// endpoints and the browser clients' cookie endpoints).
const CHECKED: &[&str] = &["/admin/v1/", "/account/v1/", "/oauth/", "/web/"];

/// Names the file that collects mismatches instead of failing the test.
const COLLECT: &str = "PORTCULLIS_OPENAPI_MISMATCHES";

/// An OpenAPI document, compiled for checking answers.
pub struct Spec {
    operations: Vec<Operation>,
}

/// One method on one path template.
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    /// By status key: `200`, `2XX` or `default`.
    responses: HashMap<String, Described>,
}

enum Segment {
    Literal(String),
    Parameter,
}

/// A documented response: its media types, each with its schema (if any).
struct Described {
    media: Vec<(String, Option<jsonschema::Validator>)>,
}

impl Spec {
    /// Compiles every response schema of `doc`, an OpenAPI 3.1 document.
    ///
    /// # Errors
    ///
    /// A schema that does not compile, or a `$ref` that points nowhere.
    pub fn new(doc: &Value) -> Result<Self, String> {
        let defs = closed_definitions(doc);
        let mut operations = Vec::new();
        let paths = doc["paths"].as_object().ok_or("the document has no paths")?;
        for (template, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                if !is_method(method) {
                    continue;
                }
                let mut responses = HashMap::new();
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    let response = resolve(doc, response)?;
                    let mut media = Vec::new();
                    for (media_type, content) in response["content"].as_object().into_iter().flatten() {
                        let validator = match content.get("schema") {
                            Some(schema) => Some(compile(schema, &defs).map_err(|e| {
                                format!("{} {template} {status} {media_type}: {e}", method.to_uppercase())
                            })?),
                            None => None,
                        };
                        media.push((media_type.to_ascii_lowercase(), validator));
                    }
                    responses.insert(status.to_ascii_uppercase(), Described { media });
                }
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: segments(template),
                    responses,
                });
            }
        }
        Ok(Self { operations })
    }

    /// Checks one answer: `method` and `path` (no query) of the request,
    /// the answer's status, `Content-Type` and body.
    ///
    /// # Errors
    ///
    /// Why the document does not describe the answer, starting with the
    /// operation and status it was checked against.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let method = method.to_ascii_uppercase();
        let Some(op) = self.operation(&method, path) else {
            // A bare 405 to a method the document does not list on a path it
            // does list is the answer "no such operation", not an
            // undocumented one.
            if status == 405 && body.is_empty() && self.has_path(path) {
                return Ok(());
            }
            return Err(format!("{method} {path} {status}: no such operation in the document"));
        };
        let at = format!("{} {} {status}", op.method, op.template);
        let Some(described) = op.response(status) else {
            return Err(format!("{at}: status not described (described: {})", op.statuses()));
        };
        let essence = content_type.map(media_essence);
        if body.is_empty() {
            return match described.media.iter().find(|(m, _)| is_json(m)) {
                Some((m, _)) => Err(format!("{at}: empty body, the document declares {m}")),
                None => Ok(()),
            };
        }
        let Some(essence) = essence else {
            return Err(format!("{at}: a body without Content-Type"));
        };
        let Some((_, validator)) = described.media.iter().find(|(m, _)| media_matches(m, &essence)) else {
            let declared: Vec<&str> = described.media.iter().map(|(m, _)| m.as_str()).collect();
            return Err(format!(
                "{at}: {essence} body not described (declared: {})",
                if declared.is_empty() {
                    "no content".to_owned()
                } else {
                    declared.join(", ")
                }
            ));
        };
        let Some(validator) = validator else { return Ok(()) };
        if !is_json(&essence) {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{at}: the body is not JSON: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{}: {e}", if path.is_empty() { "/" } else { &path })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{at}: {}", errors.join("; ")))
        }
    }

    fn has_path(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        self.operations.iter().any(|op| op.matches(&parts))
    }

    /// The operation for `method` on `path`; a literal segment wins over a
    /// parameter (`/keys/rotate` before `/keys/{id}`).
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let parts: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method == method && op.matches(&parts))
            .max_by_key(|op| op.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count())
    }
}

impl Operation {
    fn matches(&self, parts: &[&str]) -> bool {
        parts.len() == self.segments.len()
            && self.segments.iter().zip(parts).all(|(s, p)| match s {
                Segment::Literal(l) => l == p,
                Segment::Parameter => !p.is_empty(),
            })
    }

    fn response(&self, status: u16) -> Option<&Described> {
        let range = format!("{}XX", status / 100);
        self.responses
            .get(&status.to_string())
            .or_else(|| self.responses.get(&range))
            .or_else(|| self.responses.get("DEFAULT"))
    }

    fn statuses(&self) -> String {
        let mut all: Vec<&str> = self.responses.keys().map(String::as_str).collect();
        all.sort_unstable();
        all.join(", ")
    }
}

fn is_method(key: &str) -> bool {
    ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&key)
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Parameter
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Whether a declared media range (`application/json`, `text/*`, `*/*`)
/// covers an answer's media type.
fn media_matches(declared: &str, essence: &str) -> bool {
    declared == essence
        || declared == "*/*"
        || declared
            .strip_suffix("/*")
            .is_some_and(|kind| essence.split('/').next() == Some(kind))
}

/// A response object, following a `$ref` into `#/components/responses`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .ok_or_else(|| format!("unresolved $ref {r}")),
        None => Ok(value),
    }
}

/// `#/components/schemas/X` as a `$defs` entry of each compiled schema,
/// closed, plus an open variant `X.open` for in-place uses that a
/// composition closes as a whole (see [`close`]).
fn closed_definitions(doc: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        defs.insert(name.clone(), close(schema, false));
        defs.insert(format!("{name}.open"), close(schema, true));
    }
    defs
}

/// One response schema as a JSON Schema 2020-12 document carrying the
/// components it refers to.
fn compile(schema: &Value, defs: &Map<String, Value>) -> Result<jsonschema::Validator, String> {
    let mut root = match close(schema, false) {
        Value::Object(m) => m,
        // `true` / `false` schemas: keep their meaning under `allOf`.
        other => Map::from_iter([("allOf".to_owned(), json!([other]))]),
    };
    root.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    root.insert("$defs".into(), Value::Object(defs.clone()));
    jsonschema::draft202012::options()
        .build(&Value::Object(root))
        .map_err(|e| e.to_string())
}

/// Keywords whose subschemas apply to the same instance as their parent.
const IN_PLACE: &[&str] = &["allOf", "anyOf", "oneOf", "if", "then", "else", "dependentSchemas"];

/// Keywords whose subschemas apply to a child of the instance (a member or
/// an item): a new object, closed on its own.
const CHILD: &[&str] = &[
    "properties",
    "patternProperties",
    "additionalProperties",
    "items",
    "prefixItems",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "$defs",
];

/// A copy of `schema` in which an object lists every member it may have:
/// the document leaves `additionalProperties` out, and unknown members
/// must be refused all the same.
///
/// A plain object (`properties` or `type: object`, no
/// `additionalProperties` / `unevaluatedProperties` of its own) gets
/// `additionalProperties: false`. That keyword sees only the object's own
/// `properties`, so it would wrongly refuse the members that an `allOf`
/// branch, or a `$ref` / `oneOf` / `anyOf` beside the object's own
/// `properties`, brings in. Such a composition is closed as a whole
/// instead: its branches stay open (a `$ref` in them points to the
/// component's open variant) and the composing schema gets
/// `unevaluatedProperties: false` (JSON Schema 2020-12, OpenAPI 3.1's
/// dialect), which counts the members every successful branch evaluated.
/// A `oneOf` / `anyOf` without sibling `properties` lists whole
/// alternatives, so each alternative is closed on its own (which also
/// keeps `oneOf` from matching twice), and so is the target of a lone
/// `$ref`; the schema holding them gets nothing. `not` is left alone:
/// closing it would let more through, not less.
///
/// `open` is true for a schema inside such a composition.
fn close(schema: &Value, open: bool) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let has = |k: &str| map.contains_key(k);
    let applies_others = IN_PLACE.iter().any(|k| has(k)) || has("$ref");
    let composed = has("allOf") || (has("properties") && applies_others);
    let branches_open = open || composed;
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "$ref" => Value::String(rewrite_ref(value.as_str().unwrap_or_default(), branches_open)),
            k if IN_PLACE.contains(&k) => close_each(k, value, branches_open),
            k if CHILD.contains(&k) => close_each(k, value, false),
            // `not` and annotations (`example`, `description`, ...).
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    let explicit = has("additionalProperties") || has("unevaluatedProperties");
    if !open && !explicit {
        if composed {
            out.insert("unevaluatedProperties".into(), Value::Bool(false));
        } else if !applies_others && (has("properties") || map.get("type").is_some_and(is_object_type)) {
            out.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    Value::Object(out)
}

/// [`close`] over a keyword's value: an array of schemas (`allOf`,
/// `prefixItems`, ...), a map of named schemas (`properties`, `$defs`,
/// ...) or one schema.
fn close_each(keyword: &str, value: &Value, open: bool) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|s| close(s, open)).collect()),
        Value::Object(m) if SCHEMA_MAPS.contains(&keyword) => {
            Value::Object(m.iter().map(|(k, s)| (k.clone(), close(s, open))).collect())
        }
        other => close(other, open),
    }
}

/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &["properties", "patternProperties", "$defs", "dependentSchemas"];

fn is_object_type(t: &Value) -> bool {
    match t {
        Value::String(s) => s == "object",
        Value::Array(a) => a.iter().any(|t| t == "object"),
        _ => false,
    }
}

/// `#/components/schemas/X` → `#/$defs/X` (or `X.open`).
fn rewrite_ref(r: &str, open: bool) -> String {
    match r.strip_prefix("#/components/schemas/") {
        Some(name) if open => format!("#/$defs/{name}.open"),
        Some(name) => format!("#/$defs/{name}"),
        None => r.to_owned(),
    }
}

/// The checked-in `docs/openapi.json`, compiled once.
pub fn checked_in() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let text = std::fs::read_to_string(&file).expect("read docs/openapi.json");
        let doc: Value = serde_json::from_str(&text).expect("docs/openapi.json is JSON");
        Spec::new(&doc).unwrap_or_else(|e| panic!("docs/openapi.json: {e}"))
    })
}

/// Whether answers on `path` are checked.
pub fn is_checked(path: &str) -> bool {
    CHECKED.iter().any(|p| path.starts_with(p))
}

/// Checks an answer to `method path` (the path may carry a query) against
/// `docs/openapi.json` when `path` belongs to a checked API; a mismatch
/// panics, or is appended to the file named by
/// `PORTCULLIS_OPENAPI_MISMATCHES`.
pub fn check_answer(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !is_checked(path) {
        return;
    }
    let Err(why) = checked_in().check(method, path, status, content_type, body) else {
        return;
    };
    let excerpt: String = String::from_utf8_lossy(body).chars().take(600).collect();
    match std::env::var_os(COLLECT) {
        Some(file) => {
            let line = json!({"mismatch": why, "request": format!("{method} {path}"), "body": excerpt});
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .expect("open the mismatch file");
            writeln!(f, "{line}").expect("append a mismatch");
        }
        None => panic!(
            "the answer to {method} {path} does not match docs/openapi.json: {why}\nbody: {excerpt}\n\
             (the server's response types and the document must agree; set {COLLECT}=FILE to list every \
             mismatch of a run)"
        ),
    }
}
