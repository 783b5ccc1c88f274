//! The three patch formats the API server takes: JSON merge patch (RFC
//! 7386), strategic merge patch (as `kubectl apply`, `set image` and
//! `rollout undo` send it) and JSON patch (RFC 6902).
//!
//! Strategic merge is emulated for what those commands send: maps merge
//! as in a merge patch; a list whose items all carry `name` (containers,
//! env, ports, volumes) merges item by item by name, `$patch: delete` on an
//! item removes it, `$patch: replace` on a map replaces it, and the
//! `$setElementOrder/…` and `$retainKeys` directives are read as no-ops
//! (order is kept as merged). Other lists are replaced, as the API server
//! does for lists without a merge key.

use serde_json::{Map, Value};

/// Which format a `PATCH` body is in (from its content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Merge,
    Strategic,
    Json,
}

/// `target` with `patch` applied, or why it cannot be.
pub(crate) fn apply(kind: Kind, target: &Value, patch: &Value) -> Result<Value, String> {
    match kind {
        Kind::Merge => Ok(merge(target, patch)),
        Kind::Strategic => Ok(strategic(target, patch)),
        Kind::Json => json_patch(target, patch),
    }
}

/// RFC 7386.
fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

fn strategic(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = p.clone();
        replaced.remove("$patch");
        return Value::Object(replaced);
    }
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(have)), Value::Array(gone)) = (out.get(field).cloned(), v) {
                let kept: Vec<Value> = have.into_iter().filter(|x| !gone.contains(x)).collect();
                out.insert(field.to_owned(), Value::Array(kept));
            }
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Array(have)), Value::Array(items)) if by_name(items) && by_name(have) => {
                merge_named(have, items)
            }
            (Some(current), Value::Object(_)) => strategic(current, v),
            (None, Value::Object(_)) => strategic(&Value::Null, v),
            (_, Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                    .cloned()
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

fn by_name(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

fn merge_named(have: &[Value], items: &[Value]) -> Value {
    let mut out: Vec<Value> = have.to_vec();
    for item in items {
        let name = &item["name"];
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match out.iter().position(|o| &o["name"] == name) {
            Some(i) if delete => {
                out.remove(i);
            }
            Some(i) => out[i] = strategic(&out[i], item),
            None if delete => {}
            None => out.push(strategic(&Value::Null, item)),
        }
    }
    Value::Array(out)
}

/// RFC 6902: `add`, `remove`, `replace`, `move`, `copy`, `test`.
fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch is an array of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let name = op["op"].as_str().ok_or("an operation without \"op\"")?;
        let path = op["path"].as_str().ok_or("an operation without \"path\"")?;
        match name {
            "add" => add(
                &mut doc,
                path,
                op.get("value").cloned().unwrap_or(Value::Null),
            )?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(
                    &mut doc,
                    path,
                    op.get("value").cloned().unwrap_or(Value::Null),
                )?;
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("move/copy without \"from\"")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("no value at {from}"))?;
                if name == "move" {
                    remove(&mut doc, from)?;
                }
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != op.get("value") {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation '{other}'")),
        }
    }
    Ok(doc)
}

fn split(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer '{path}'"))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    Ok((parent.to_owned(), last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("no value at {parent}"))?;
    match target {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index '{last}'"))?;
            if i > a.len() {
                return Err(format!("index {i} is past the end of {parent}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("{parent} is not an object or an array")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("no value at {parent}"))?;
    match target {
        Value::Object(m) => m.remove(&last).ok_or_else(|| format!("no value at {path}")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index '{last}'"))?;
            if i >= a.len() {
                return Err(format!("no value at {path}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("{parent} is not an object or an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_replaces_other_lists() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "shop:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "proxy:1"}
        ]}}, "args": ["a", "b"]}});
        let p = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "web", "image": "shop:2"}]
        }}, "args": ["c"]}});
        let out = apply(Kind::Strategic, &d, &p).expect("applies");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "shop:2"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            "1"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["image"],
            "proxy:1"
        );
        assert_eq!(out["spec"]["args"], json!(["c"]));
        let del = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
        let out = apply(Kind::Strategic, &out, &del).expect("applies");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        let replace = json!({"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"v": "2"}}}}});
        let out = apply(Kind::Strategic, &out, &replace).expect("applies");
        assert_eq!(
            out["spec"]["template"],
            json!({"metadata": {"labels": {"v": "2"}}})
        );
    }

    #[test]
    fn merge_and_json_patches_follow_their_rfcs() {
        let d = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        assert_eq!(
            apply(
                Kind::Merge,
                &d,
                &json!({"a": {"b": null, "d": 3}, "l": [9]})
            )
            .expect("merge"),
            json!({"a": {"c": 2, "d": 3}, "l": [9]})
        );
        let ops = json!([
            {"op": "replace", "path": "/a/b", "value": 5},
            {"op": "add", "path": "/l/-", "value": 3},
            {"op": "remove", "path": "/l/0"},
            {"op": "test", "path": "/a/c", "value": 2}
        ]);
        assert_eq!(
            apply(Kind::Json, &d, &ops).expect("json patch"),
            json!({"a": {"b": 5, "c": 2}, "l": [2, 3]})
        );
        assert!(
            apply(
                Kind::Json,
                &d,
                &json!([{"op": "test", "path": "/a/c", "value": 9}])
            )
            .is_err()
        );
        assert!(
            apply(
                Kind::Json,
                &d,
                &json!([{"op": "remove", "path": "/nope/x"}])
            )
            .is_err()
        );
    }
}
