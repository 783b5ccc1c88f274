//! Validation and execution (specification §5–§6) over the sandbox schema:
//! a document is checked whole before anything runs — an unknown field,
//! argument, type or fragment anywhere is an error naming it, in the shape
//! GitHub answers (`extensions.code`, `path`, `locations`), and no data —
//! then the chosen query runs field by field through [`Resolver`], with
//! errors placed on their path and nulls propagating to the nearest
//! nullable parent.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value, json};

use super::resolve::{Args, FieldError, Obj, Out, Resolver};
use super::schema::{Schema, schema};
use super::syntax::{
    Directive, Document, Field, Fragment, Kind, Lit, OpKind, Operation, Pos, Selection, TypeDef,
    TypeRef, parse_document,
};

/// Shown after messages about what the sandbox does not implement.
pub(super) const SUBSET_NOTE: &str = "the expedite sandbox implements a subset of GitHub's GraphQL schema: sandbox/src/github/graphql/schema.graphql";

fn loc(p: Pos) -> Ordered {
    Ordered::List(vec![Ordered::map(vec![
        ("line", json!(p.line).into()),
        ("column", json!(p.column).into()),
    ])])
}

/// A JSON value whose objects keep their keys in the order they were
/// built: answers follow the query's field order (§7.2.2), errors GitHub's
/// key order.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ordered {
    Value(Value),
    List(Vec<Ordered>),
    Map(Vec<(String, Ordered)>),
}

impl Ordered {
    fn map(pairs: Vec<(&str, Ordered)>) -> Self {
        Ordered::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn is_null(&self) -> bool {
        matches!(self, Ordered::Value(Value::Null))
    }
}

impl From<Value> for Ordered {
    fn from(v: Value) -> Self {
        Ordered::Value(v)
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Ordered::Value(v) => v.serialize(ser),
            Ordered::List(items) => {
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Ordered::Map(pairs) => {
                let mut map = ser.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// `{"errors": [...]}`: a request refused before it ran.
fn refused(errors: Vec<Ordered>) -> Ordered {
    Ordered::map(vec![("errors", Ordered::List(errors))])
}

/// An error with only a message and where.
fn message_error(message: &str, pos: Pos) -> Ordered {
    Ordered::map(vec![
        ("message", json!(message).into()),
        ("locations", loc(pos)),
    ])
}

fn static_error(message: String, pos: Pos, path: &[String], extensions: Value) -> Ordered {
    Ordered::map(vec![
        ("path", json!(path).into()),
        ("extensions", extensions.into()),
        ("locations", loc(pos)),
        ("message", json!(message).into()),
    ])
}

/// Runs one request; the JSON body GitHub would answer (always 200).
pub(super) fn run(
    resolver: &Resolver<'_>,
    query: &str,
    variables: &Map<String, Value>,
    operation_name: Option<&str>,
) -> Ordered {
    let doc = match parse_document(query) {
        Ok(d) => d,
        Err(e) => return refused(vec![message_error(&e.message, e.pos)]),
    };
    let op = match pick_operation(&doc, operation_name) {
        Ok(op) => op,
        Err(e) => return refused(vec![Ordered::map(vec![("message", json!(e).into())])]),
    };
    // The sandbox's schema has no mutation or subscription root: said
    // first, rather than as errors about their input types.
    match op.kind {
        OpKind::Query => {}
        OpKind::Mutation => {
            return refused(vec![message_error(
                &format!(
                    "Schema is not configured for mutations ({SUBSET_NOTE}; it has no mutations: write through REST)"
                ),
                op.pos,
            )]);
        }
        OpKind::Subscription => {
            return refused(vec![message_error(
                "Schema is not configured for subscriptions",
                op.pos,
            )]);
        }
    }
    let s = schema();
    let mut v = Validator {
        s,
        doc: &doc,
        errors: Vec::new(),
        used_vars: BTreeSet::new(),
        used_fragments: BTreeSet::new(),
        validated: BTreeSet::new(),
    };
    // Every operation is checked, as GitHub does, though one runs.
    for o in &doc.operations {
        v.used_vars.clear();
        v.operation(o);
    }
    v.document_rules();
    if !v.errors.is_empty() {
        return refused(v.errors);
    }
    let vars = match coerce_variables(s, op, variables) {
        Ok(v) => v,
        Err(errors) => return refused(errors),
    };
    let mut ex = Executor {
        s,
        doc: &doc,
        vars,
        resolver,
        errors: Vec::new(),
        path: Vec::new(),
    };
    let root = s.get("Query").expect("query root");
    let data = ex.selection(&Obj::Query, root, &[&op.selection]);
    let mut out = vec![(
        "data",
        data.map_or(Ordered::Value(Value::Null), Ordered::Map),
    )];
    if !ex.errors.is_empty() {
        out.push(("errors", Ordered::List(ex.errors)));
    }
    Ordered::map(out)
}

fn pick_operation<'d>(doc: &'d Document, name: Option<&str>) -> Result<&'d Operation, String> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => doc
            .operations
            .iter()
            .find(|o| o.name.as_deref() == Some(n))
            .ok_or_else(|| format!("No operation named \"{n}\"")),
        None => match doc.operations.as_slice() {
            [op] => Ok(op),
            [] => Err("No operations in this document".to_owned()),
            _ => Err("An operation name is required".to_owned()),
        },
    }
}

// ---------------------------------------------------------------- validation

fn used_variables(used: &mut BTreeSet<String>, l: &Lit) {
    match l {
        Lit::Var(v) => {
            used.insert(v.clone());
        }
        Lit::List(items) => items.iter().for_each(|i| used_variables(used, i)),
        Lit::Object(fields) => fields.iter().for_each(|(_, v)| used_variables(used, v)),
        _ => {}
    }
}

struct Validator<'d> {
    s: &'static Schema,
    doc: &'d Document,
    errors: Vec<Ordered>,
    used_vars: BTreeSet<String>,
    used_fragments: BTreeSet<String>,
    /// Fragments whose bodies were checked.
    validated: BTreeSet<String>,
}

impl<'d> Validator<'d> {
    fn op_label(op: &Operation) -> String {
        let kind = match op.kind {
            OpKind::Query => "query",
            OpKind::Mutation => "mutation",
            OpKind::Subscription => "subscription",
        };
        match &op.name {
            Some(n) => format!("{kind} {n}"),
            None => kind.to_owned(),
        }
    }

    fn operation(&mut self, op: &'d Operation) {
        let label = Self::op_label(op);
        let mut seen = HashSet::new();
        for v in &op.vars {
            if !seen.insert(v.name.as_str()) {
                self.errors.push(static_error(
                    format!("There can only be one variable named \"{}\"", v.name),
                    v.pos,
                    std::slice::from_ref(&label),
                    json!({"code": "variableNotUnique", "variableName": v.name}),
                ));
            }
            match self.s.get(v.ty.named()) {
                Some(t) if t.kind.is_input() => {
                    if let Some(d) = &v.default
                        && !self.literal_ok(d, &v.ty, None)
                    {
                        self.errors.push(static_error(
                            format!(
                                "Default value for ${} doesn't match type {}",
                                v.name, v.ty
                            ),
                            v.pos,
                            std::slice::from_ref(&label),
                            json!({"code": "defaultValueInvalidType", "variableName": v.name, "typeName": v.ty.to_string()}),
                        ));
                    }
                }
                _ => self.errors.push(static_error(
                    format!("{} isn't a defined input type (on ${})", v.ty.named(), v.name),
                    v.pos,
                    std::slice::from_ref(&label),
                    json!({"code": "variableRequiresValidType", "typeName": v.ty.named(), "variableName": v.name}),
                )),
            }
        }
        self.directives(&op.directives, std::slice::from_ref(&label), Some(op));
        let root_name = match op.kind {
            OpKind::Query => "Query",
            // No mutation or subscription root: reported when run.
            _ => return,
        };
        let root = self.s.get(root_name).expect("query root");
        let mut path = vec![label.clone()];
        let mut stack = Vec::new();
        self.selection(root, &op.selection, &mut path, op, &mut stack);
        for v in &op.vars {
            if !self.used_vars.contains(&v.name) {
                self.errors.push(static_error(
                    format!(
                        "Variable ${} is declared by {} but not used",
                        v.name,
                        op.name.as_deref().unwrap_or("anonymous query")
                    ),
                    v.pos,
                    std::slice::from_ref(&label),
                    json!({"code": "variableNotUsed", "variableName": v.name}),
                ));
            }
        }
    }

    fn document_rules(&mut self) {
        let mut seen = HashSet::new();
        for f in &self.doc.fragments {
            if !seen.insert(f.name.as_str()) {
                self.errors.push(static_error(
                    format!("Fragment name \"{}\" must be unique", f.name),
                    f.pos,
                    &[format!("fragment {}", f.name)],
                    json!({"code": "fragmentNotUnique", "fragmentName": f.name}),
                ));
            }
            if !self.used_fragments.contains(&f.name) {
                self.errors.push(static_error(
                    format!("Fragment {} was defined, but not used", f.name),
                    f.pos,
                    &[format!("fragment {}", f.name)],
                    json!({"code": "useAndDefineFragment", "fragmentName": f.name}),
                ));
            }
        }
        let mut ops = HashSet::new();
        for o in &self.doc.operations {
            if let Some(n) = &o.name
                && !ops.insert(n.as_str())
            {
                self.errors.push(static_error(
                    format!("Operation name \"{n}\" must be unique"),
                    o.pos,
                    &[Self::op_label(o)],
                    json!({"code": "operationNotUnique", "operationName": n}),
                ));
            }
        }
        if self.doc.operations.len() > 1 && self.doc.operations.iter().any(|o| o.name.is_none()) {
            self.errors.push(message_error(
                "This anonymous operation must be the only defined operation.",
                self.doc.operations[0].pos,
            ));
        }
    }

    fn directives(&mut self, ds: &[Directive], path: &[String], op: Option<&Operation>) {
        for d in ds {
            if !matches!(d.name.as_str(), "include" | "skip") {
                self.errors.push(static_error(
                    format!("Directive @{} is not defined", d.name),
                    d.pos,
                    path,
                    json!({"code": "undefinedDirective", "directiveName": d.name}),
                ));
                continue;
            }
            let cond = d.args.iter().find(|(k, _)| k == "if");
            let ok = d.args.len() == 1
                && cond.is_some_and(|(_, v)| {
                    self.literal_ok(
                        v,
                        &TypeRef::NonNull(Box::new(TypeRef::Named("Boolean".into()))),
                        op,
                    )
                });
            if !ok {
                self.errors.push(static_error(
                    format!("Directive '@{}' is missing required arguments: if", d.name),
                    d.pos,
                    path,
                    json!({"code": "missingRequiredArguments", "className": "Directive", "name": d.name, "arguments": "if"}),
                ));
            }
        }
    }

    /// Whether a literal fits `ty` (variables: declared; their types are
    /// checked when the values arrive).
    fn literal_ok(&mut self, lit: &Lit, ty: &TypeRef, op: Option<&Operation>) -> bool {
        match (lit, ty) {
            (Lit::Var(name), _) => {
                self.used_vars.insert(name.clone());
                op.is_none_or(|op| op.vars.iter().any(|v| &v.name == name))
            }
            (Lit::Null, TypeRef::NonNull(_)) => false,
            (_, TypeRef::NonNull(inner)) => self.literal_ok(lit, inner, op),
            (Lit::Null, _) => true,
            (Lit::List(items), TypeRef::List(inner)) => {
                items.iter().all(|i| self.literal_ok(i, inner, op))
            }
            (_, TypeRef::List(inner)) => self.literal_ok(lit, inner, op),
            (_, TypeRef::Named(n)) => {
                let Some(t) = self.s.get(n) else {
                    return false;
                };
                match (t.kind, lit) {
                    (Kind::Enum, Lit::Enum(v)) => t.values.iter().any(|x| &x.name == v),
                    (Kind::InputObject, Lit::Object(fields)) => {
                        let known = fields.iter().all(|(k, v)| {
                            match t.inputs.iter().find(|i| &i.name == k) {
                                Some(def) => {
                                    let ty = def.ty.clone();
                                    self.literal_ok(v, &ty, op)
                                }
                                None => false,
                            }
                        });
                        let required = t.inputs.iter().all(|i| {
                            !i.ty.is_non_null()
                                || i.default.is_some()
                                || fields.iter().any(|(k, _)| k == &i.name)
                        });
                        known && required
                    }
                    (Kind::Scalar, _) => match n.as_str() {
                        "Int" => matches!(lit, Lit::Int(v) if i32::try_from(*v).is_ok()),
                        "Float" => matches!(lit, Lit::Int(_) | Lit::Float(_)),
                        "Boolean" => matches!(lit, Lit::Bool(_)),
                        "ID" => matches!(lit, Lit::Str(_) | Lit::Int(_)),
                        _ => matches!(lit, Lit::Str(_)),
                    },
                    _ => false,
                }
            }
        }
    }

    /// Notes the variables a part of the document uses that cannot be
    /// checked against the schema (under an unknown field or type).
    fn mark_variables(&mut self, sels: &[Selection], depth: usize) {
        let lit = used_variables;
        if depth > 32 {
            return;
        }
        for sel in sels {
            let (directives, children) = match sel {
                Selection::Field(f) => {
                    f.args.iter().for_each(|(_, v)| lit(&mut self.used_vars, v));
                    (&f.directives, f.selection.as_slice())
                }
                Selection::Inline {
                    directives,
                    selection,
                    ..
                } => (directives, selection.as_slice()),
                Selection::Spread {
                    name, directives, ..
                } => {
                    self.used_fragments.insert(name.clone());
                    if let Some(frag) = self.doc.fragments.iter().find(|f| &f.name == name) {
                        self.mark_variables(&frag.selection, depth + 1);
                    }
                    (directives, &[][..])
                }
            };
            for d in directives {
                d.args.iter().for_each(|(_, v)| lit(&mut self.used_vars, v));
            }
            self.mark_variables(children, depth + 1);
        }
    }

    fn selection(
        &mut self,
        parent: &TypeDef,
        sels: &'d [Selection],
        path: &mut Vec<String>,
        op: &'d Operation,
        stack: &mut Vec<&'d str>,
    ) {
        // Fields answered under one key must be the same field with the
        // same arguments (the fragments' are compared when run).
        let mut keys: Vec<&Field> = Vec::new();
        for sel in sels {
            if let Selection::Field(f) = sel {
                match keys.iter().find(|g| g.key() == f.key()) {
                    Some(g) if g.name != f.name || g.args != f.args => {
                        self.errors.push(static_error(
                            format!(
                                "Field '{}' has a field conflict: {} or {}?",
                                f.key(),
                                g.name,
                                f.name
                            ),
                            f.pos,
                            path,
                            json!({"code": "fieldConflict", "fieldName": f.key(), "conflicts": format!("{} or {}", g.name, f.name)}),
                        ));
                    }
                    Some(_) => {}
                    None => keys.push(f),
                }
            }
        }
        for sel in sels {
            match sel {
                Selection::Field(f) => self.field(parent, f, path, op, stack),
                Selection::Inline {
                    on,
                    directives,
                    selection,
                    pos,
                } => {
                    self.directives(directives, path, Some(op));
                    let target = match on {
                        Some(on) => match self.fragment_target(parent, on, *pos, path) {
                            Some(t) => t,
                            None => {
                                self.mark_variables(selection, 0);
                                continue;
                            }
                        },
                        None => parent,
                    };
                    let label = match on {
                        Some(on) => format!("... on {on}"),
                        None => "...".to_owned(),
                    };
                    path.push(label);
                    self.selection(target, selection, path, op, stack);
                    path.pop();
                }
                Selection::Spread {
                    name,
                    directives,
                    pos,
                } => {
                    self.directives(directives, path, Some(op));
                    self.used_fragments.insert(name.clone());
                    let Some(frag) = self.doc.fragments.iter().find(|f| &f.name == name) else {
                        self.errors.push(static_error(
                            format!("Fragment {name} was used, but not defined"),
                            *pos,
                            path,
                            json!({"code": "useAndDefineFragment", "fragmentName": name}),
                        ));
                        continue;
                    };
                    if stack.contains(&frag.name.as_str()) {
                        self.errors.push(static_error(
                            format!("Fragment {name} contains an infinite loop"),
                            frag.pos,
                            &[format!("fragment {name}")],
                            json!({"code": "infiniteLoop", "fragmentName": name}),
                        ));
                        continue;
                    }
                    self.fragment(parent, frag, *pos, path, op, stack);
                }
            }
        }
    }

    /// A spread of `frag` inside `parent`: whether it can apply there, and
    /// (once per fragment) its body, reported on the fragment's path.
    fn fragment(
        &mut self,
        parent: &TypeDef,
        frag: &'d Fragment,
        pos: Pos,
        path: &[String],
        op: &'d Operation,
        stack: &mut Vec<&'d str>,
    ) {
        let Some(target) = self.fragment_target(parent, &frag.on, pos, path) else {
            self.mark_variables(&frag.selection, 0);
            return;
        };
        if !self.validated.insert(frag.name.clone()) {
            // Checked already; its variables count for this operation too.
            self.mark_variables(&frag.selection, 0);
            return;
        }
        let mut fpath = vec![format!("fragment {}", frag.name)];
        self.directives(&frag.directives, &fpath, Some(op));
        stack.push(&frag.name);
        self.selection(target, &frag.selection, &mut fpath, op, stack);
        stack.pop();
    }

    fn fragment_target(
        &mut self,
        parent: &TypeDef,
        on: &str,
        pos: Pos,
        path: &[String],
    ) -> Option<&'static TypeDef> {
        let Some(t) = self.s.get(on) else {
            self.errors.push(static_error(
                format!("No such type {on}, so it can't be a fragment condition"),
                pos,
                path,
                json!({"code": "undefinedType", "typeName": on}),
            ));
            return None;
        };
        if !t.kind.is_composite() {
            self.errors.push(static_error(
                format!("Invalid fragment on type {on} (must be Union, Interface or Object)"),
                pos,
                path,
                json!({"code": "fragmentOnNonCompositeType", "typeName": on}),
            ));
            return None;
        }
        if !self.s.overlap(&parent.name, on) {
            self.errors.push(static_error(
                format!("Fragment on {on} can't be spread inside {}", parent.name),
                pos,
                path,
                json!({"code": "cannotSpreadFragment", "typeName": on, "parentName": parent.name}),
            ));
            return None;
        }
        Some(t)
    }

    fn field(
        &mut self,
        parent: &TypeDef,
        f: &'d Field,
        path: &mut Vec<String>,
        op: &'d Operation,
        stack: &mut Vec<&'d str>,
    ) {
        path.push(f.key().to_owned());
        self.directives(&f.directives, path, Some(op));
        if f.name == "__typename" {
            if !f.selection.is_empty() {
                self.errors.push(static_error(
                    "Selections can't be made on scalars (field '__typename' returns String but has selections [...])".to_owned(),
                    f.pos,
                    path,
                    json!({"code": "selectionMismatch", "nodeName": "field '__typename'", "typeName": "String"}),
                ));
            }
            path.pop();
            return;
        }
        let Some(def) = self.s.field(parent, &f.name) else {
            f.args
                .iter()
                .for_each(|(_, v)| used_variables(&mut self.used_vars, v));
            self.mark_variables(&f.selection, 0);
            self.errors.push(static_error(
                format!(
                    "Field '{}' doesn't exist on type '{}' ({SUBSET_NOTE})",
                    f.name, parent.name
                ),
                f.pos,
                path,
                json!({"code": "undefinedField", "typeName": parent.name, "fieldName": f.name}),
            ));
            path.pop();
            return;
        };
        for (name, lit) in &f.args {
            match def.args.iter().find(|a| &a.name == name) {
                None => self.errors.push(static_error(
                    format!(
                        "Field '{}' doesn't accept argument '{name}' ({SUBSET_NOTE})",
                        f.name
                    ),
                    f.pos,
                    path,
                    json!({"code": "argumentNotAccepted", "name": f.name, "typeName": "Field", "argumentName": name}),
                )),
                Some(a) => {
                    if !self.literal_ok(lit, &a.ty, Some(op)) {
                        self.errors.push(static_error(
                            format!(
                                "Argument '{name}' on Field '{}' has an invalid value ({lit}). Expected type '{}'.",
                                f.key(),
                                a.ty
                            ),
                            f.pos,
                            path,
                            json!({"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": name}),
                        ));
                    }
                }
            }
        }
        let missing: Vec<&str> = def
            .args
            .iter()
            .filter(|a| a.ty.is_non_null() && a.default.is_none())
            .filter(|a| !f.args.iter().any(|(k, _)| k == &a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            self.errors.push(static_error(
                format!(
                    "Field '{}' is missing required arguments: {}",
                    f.name,
                    missing.join(", ")
                ),
                f.pos,
                path,
                json!({"code": "missingRequiredArguments", "className": "Field", "name": f.name, "arguments": missing.join(", ")}),
            ));
        }
        let rt = self
            .s
            .get(def.ty.named())
            .expect("schema types are defined");
        if rt.kind.is_composite() {
            if f.selection.is_empty() {
                self.errors.push(static_error(
                    format!(
                        "Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)",
                        f.name, def.ty, f.name
                    ),
                    f.pos,
                    path,
                    json!({"code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": def.ty.to_string()}),
                ));
            } else {
                self.selection(rt, &f.selection, path, op, stack);
            }
        } else if !f.selection.is_empty() {
            let what = if rt.kind == Kind::Enum {
                "enums"
            } else {
                "scalars"
            };
            let names: Vec<String> = f
                .selection
                .iter()
                .map(|s| match s {
                    Selection::Field(x) => x.name.clone(),
                    Selection::Spread { name, .. } => format!("...{name}"),
                    Selection::Inline { .. } => "...".to_owned(),
                })
                .collect();
            self.errors.push(static_error(
                format!(
                    "Selections can't be made on {what} (field '{}' returns {} but has selections [{}])",
                    f.name,
                    rt.name,
                    names.join(", ")
                ),
                f.pos,
                path,
                json!({"code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": rt.name}),
            ));
        }
        path.pop();
    }
}

// ---------------------------------------------------------------- input coercion

fn json_kind(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

/// A JSON value (a variable's) as type `ty`.
pub(super) fn coerce_json(s: &Schema, v: &Value, ty: &TypeRef) -> Result<Value, String> {
    match ty {
        TypeRef::NonNull(inner) => {
            if v.is_null() {
                Err("Expected value to not be null".to_owned())
            } else {
                coerce_json(s, v, inner)
            }
        }
        TypeRef::List(inner) => match v {
            Value::Null => Ok(Value::Null),
            Value::Array(items) => items
                .iter()
                .map(|i| coerce_json(s, i, inner))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            single => Ok(Value::Array(vec![coerce_json(s, single, inner)?])),
        },
        TypeRef::Named(n) => {
            if v.is_null() {
                return Ok(Value::Null);
            }
            let t = s.get(n).ok_or_else(|| format!("unknown type {n}"))?;
            match t.kind {
                Kind::Scalar => match n.as_str() {
                    "Int" => v
                        .as_i64()
                        .filter(|x| i32::try_from(*x).is_ok())
                        .map(|x| json!(x))
                        .ok_or_else(|| format!("Could not coerce value {} to Int", json_kind(v))),
                    "Float" => v
                        .as_f64()
                        .map(|x| json!(x))
                        .ok_or_else(|| format!("Could not coerce value {} to Float", json_kind(v))),
                    "Boolean" => v.as_bool().map(Value::Bool).ok_or_else(|| {
                        format!("Could not coerce value {} to Boolean", json_kind(v))
                    }),
                    "ID" => match v {
                        Value::String(x) => Ok(Value::String(x.clone())),
                        Value::Number(x) if x.is_i64() => Ok(Value::String(x.to_string())),
                        _ => Err(format!("Could not coerce value {} to ID", json_kind(v))),
                    },
                    other => v
                        .as_str()
                        .map(|x| Value::String(x.to_owned()))
                        .ok_or_else(|| {
                            format!("Could not coerce value {} to {other}", json_kind(v))
                        }),
                },
                Kind::Enum => match v.as_str() {
                    Some(x) if t.values.iter().any(|e| e.name == x) => Ok(json!(x)),
                    _ => Err(format!(
                        "Expected {} to be one of: {}",
                        json_kind(v),
                        t.values
                            .iter()
                            .map(|e| e.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
                Kind::InputObject => {
                    let Value::Object(o) = v else {
                        return Err(format!(
                            "Expected {} to be a key-value object",
                            json_kind(v)
                        ));
                    };
                    let mut out = Map::new();
                    for k in o.keys() {
                        if !t.inputs.iter().any(|i| &i.name == k) {
                            return Err(format!(
                                "Field is not defined on {n}: {k} ({SUBSET_NOTE})"
                            ));
                        }
                    }
                    for i in &t.inputs {
                        match o.get(&i.name) {
                            Some(x) => {
                                out.insert(i.name.clone(), coerce_json(s, x, &i.ty)?);
                            }
                            None => {
                                if let Some(d) = &i.default {
                                    if let Some(x) = coerce_lit(s, d, &i.ty, &Map::new())? {
                                        out.insert(i.name.clone(), x);
                                    }
                                } else if i.ty.is_non_null() {
                                    return Err(format!(
                                        "Expected value to not be null (field {} of {n})",
                                        i.name
                                    ));
                                }
                            }
                        }
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(format!("{n} is not an input type")),
            }
        }
    }
}

/// A literal as type `ty`, variables substituted; `None` when it is an
/// absent variable.
pub(super) fn coerce_lit(
    s: &Schema,
    lit: &Lit,
    ty: &TypeRef,
    vars: &Map<String, Value>,
) -> Result<Option<Value>, String> {
    if let Lit::Var(name) = lit {
        return match vars.get(name) {
            Some(v) => coerce_json(s, v, ty).map(Some),
            None => Ok(None),
        };
    }
    match ty {
        TypeRef::NonNull(inner) => match lit {
            Lit::Null => Err("Expected value to not be null".to_owned()),
            _ => coerce_lit(s, lit, inner, vars),
        },
        TypeRef::List(inner) => match lit {
            Lit::Null => Ok(Some(Value::Null)),
            Lit::List(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.push(coerce_lit(s, i, inner, vars)?.unwrap_or(Value::Null));
                }
                Ok(Some(Value::Array(out)))
            }
            single => Ok(Some(Value::Array(vec![
                coerce_lit(s, single, inner, vars)?.unwrap_or(Value::Null),
            ]))),
        },
        TypeRef::Named(n) => {
            let t = s.get(n).ok_or_else(|| format!("unknown type {n}"))?;
            let v = match (lit, t.kind) {
                (Lit::Null, _) => Value::Null,
                (Lit::Object(fields), Kind::InputObject) => {
                    let mut out = Map::new();
                    for (k, _) in fields {
                        if !t.inputs.iter().any(|i| &i.name == k) {
                            return Err(format!("Field is not defined on {n}: {k}"));
                        }
                    }
                    for i in &t.inputs {
                        let given = fields.iter().find(|(k, _)| k == &i.name).map(|(_, v)| v);
                        let value = match given {
                            Some(l) => coerce_lit(s, l, &i.ty, vars)?,
                            None => None,
                        };
                        let value = match value {
                            Some(v) => Some(v),
                            None => match &i.default {
                                Some(d) => coerce_lit(s, d, &i.ty, &Map::new())?,
                                None => None,
                            },
                        };
                        match value {
                            Some(v) => {
                                out.insert(i.name.clone(), v);
                            }
                            None if i.ty.is_non_null() => {
                                return Err(format!(
                                    "Expected value to not be null (field {} of {n})",
                                    i.name
                                ));
                            }
                            None => {}
                        }
                    }
                    Value::Object(out)
                }
                (Lit::Enum(e), Kind::Enum) if t.values.iter().any(|x| &x.name == e) => json!(e),
                (Lit::Int(i), Kind::Scalar) if n == "Int" && i32::try_from(*i).is_ok() => json!(i),
                (Lit::Int(i), Kind::Scalar) if n == "Float" => json!(*i as f64),
                (Lit::Float(f), Kind::Scalar) if n == "Float" => json!(f),
                (Lit::Int(i), Kind::Scalar) if n == "ID" => json!(i.to_string()),
                (Lit::Bool(b), Kind::Scalar) if n == "Boolean" => json!(b),
                (Lit::Str(x), Kind::Scalar)
                    if !matches!(n.as_str(), "Int" | "Float" | "Boolean") =>
                {
                    json!(x)
                }
                _ => return Err(format!("{lit} is not a valid {n}")),
            };
            Ok(Some(v))
        }
    }
}

fn coerce_variables(
    s: &Schema,
    op: &Operation,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Ordered>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for v in &op.vars {
        let problem = |explanation: String, value: &Value| {
            Ordered::map(vec![
                (
                    "message",
                    json!(format!(
                        "Variable ${} of type {} was provided invalid value",
                        v.name, v.ty
                    ))
                    .into(),
                ),
                ("locations", loc(v.pos)),
                (
                    "extensions",
                    json!({"value": value, "problems": [{"path": [], "explanation": explanation}]})
                        .into(),
                ),
            ])
        };
        match given.get(&v.name) {
            Some(value) => match coerce_json(s, value, &v.ty) {
                Ok(c) => {
                    out.insert(v.name.clone(), c);
                }
                Err(e) => errors.push(problem(e, value)),
            },
            None => match &v.default {
                Some(d) => match coerce_lit(s, d, &v.ty, &Map::new()) {
                    Ok(Some(c)) => {
                        out.insert(v.name.clone(), c);
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(problem(e, &Value::Null)),
                },
                None if v.ty.is_non_null() => {
                    errors.push(problem(
                        "Expected value to not be null".to_owned(),
                        &Value::Null,
                    ));
                }
                None => {}
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------- execution

struct Executor<'d, 'r, 'a> {
    s: &'static Schema,
    doc: &'d Document,
    vars: Map<String, Value>,
    resolver: &'r Resolver<'a>,
    errors: Vec<Ordered>,
    path: Vec<Value>,
}

type Group<'d> = (String, Vec<&'d Field>);

impl<'d, 'a> Executor<'d, '_, 'a> {
    fn included(&self, ds: &[Directive]) -> bool {
        ds.iter().all(|d| {
            let cond = d
                .args
                .iter()
                .find(|(k, _)| k == "if")
                .and_then(|(_, l)| {
                    coerce_lit(self.s, l, &TypeRef::Named("Boolean".into()), &self.vars)
                        .ok()
                        .flatten()
                })
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            match d.name.as_str() {
                "skip" => !cond,
                _ => cond,
            }
        })
    }

    /// CollectFields (§6.3.2): the fields that apply to `concrete`, grouped
    /// by response key in order.
    fn collect(
        &self,
        concrete: &str,
        sets: &[&'d [Selection]],
        out: &mut Vec<Group<'d>>,
        seen_fragments: &mut HashSet<&'d str>,
    ) {
        for set in sets {
            for sel in *set {
                match sel {
                    Selection::Field(f) => {
                        if !self.included(&f.directives) {
                            continue;
                        }
                        match out.iter_mut().find(|(k, _)| k == f.key()) {
                            Some((_, fs)) => fs.push(f),
                            None => out.push((f.key().to_owned(), vec![f])),
                        }
                    }
                    Selection::Inline {
                        on,
                        directives,
                        selection,
                        ..
                    } => {
                        if !self.included(directives)
                            || on.as_deref().is_some_and(|t| !self.s.applies(concrete, t))
                        {
                            continue;
                        }
                        self.collect(concrete, &[selection], out, seen_fragments);
                    }
                    Selection::Spread {
                        name, directives, ..
                    } => {
                        if !self.included(directives) || !seen_fragments.insert(name) {
                            continue;
                        }
                        let Some(frag) = self.doc.fragments.iter().find(|f| &f.name == name) else {
                            continue;
                        };
                        if self.included(&frag.directives) && self.s.applies(concrete, &frag.on) {
                            self.collect(concrete, &[&frag.selection], out, seen_fragments);
                        }
                    }
                }
            }
        }
    }

    fn error(&mut self, pos: Pos, e: FieldError) {
        let mut v = Vec::new();
        if let Some(kind) = e.kind {
            v.push(("type", json!(kind).into()));
        }
        v.push(("path", Value::Array(self.path.clone()).into()));
        v.push(("locations", loc(pos)));
        v.push(("message", json!(e.message).into()));
        self.errors.push(Ordered::map(v));
    }

    /// Executes a selection on an object of concrete type `t`; `None` when
    /// a non-null field failed (the object becomes null).
    fn selection(
        &mut self,
        obj: &Obj<'a>,
        t: &'static TypeDef,
        sets: &[&'d [Selection]],
    ) -> Option<Vec<(String, Ordered)>> {
        let mut groups = Vec::new();
        self.collect(&t.name, sets, &mut groups, &mut HashSet::new());
        let mut out: Vec<(String, Ordered)> = Vec::new();
        for (key, fields) in groups {
            let f = fields[0];
            self.path.push(json!(key));
            if let Some(other) = fields.iter().find(|g| g.name != f.name || g.args != f.args) {
                let e = FieldError::plain(format!(
                    "Field '{key}' has a field conflict: {} or {}?",
                    f.name, other.name
                ));
                self.error(f.pos, e);
                self.path.pop();
                out.push((key, Ordered::Value(Value::Null)));
                continue;
            }
            if f.name == "__typename" {
                out.push((key, json!(t.name).into()));
                self.path.pop();
                continue;
            }
            let def = self.s.field(t, &f.name).expect("validated");
            let value = self.field(obj, t, f, &fields, def);
            self.path.pop();
            match value {
                Some(v) => {
                    out.push((key, v));
                }
                None if def.ty.is_non_null() => return None,
                None => {
                    out.push((key, Ordered::Value(Value::Null)));
                }
            }
        }
        Some(out)
    }

    fn field(
        &mut self,
        obj: &Obj<'a>,
        t: &'static TypeDef,
        f: &'d Field,
        fields: &[&'d Field],
        def: &'static super::syntax::FieldDef,
    ) -> Option<Ordered> {
        let mut args = Map::new();
        for a in &def.args {
            let given = f.args.iter().find(|(k, _)| k == &a.name).map(|(_, v)| v);
            let value = match given {
                Some(l) => coerce_lit(self.s, l, &a.ty, &self.vars),
                None => Ok(None),
            };
            let value = match value {
                Ok(Some(v)) => Ok(Some(v)),
                Ok(None) => match &a.default {
                    Some(d) => coerce_lit(self.s, d, &a.ty, &Map::new()),
                    None if a.ty.is_non_null() => Err("Expected value to not be null".to_owned()),
                    None => Ok(None),
                },
                Err(e) => Err(e),
            };
            match value {
                Ok(Some(v)) => {
                    args.insert(a.name.clone(), v);
                }
                Ok(None) => {}
                Err(e) => {
                    let msg = format!(
                        "Argument '{}' on Field '{}' has an invalid value: {e}. Expected type '{}'.",
                        a.name,
                        f.key(),
                        a.ty
                    );
                    self.error(f.pos, FieldError::plain(msg));
                    return if def.ty.is_non_null() {
                        None
                    } else {
                        Some(Ordered::Value(Value::Null))
                    };
                }
            }
        }
        let subsets: Vec<&'d [Selection]> = fields.iter().map(|g| g.selection.as_slice()).collect();
        let wants_items = self.selects_items(&subsets);
        let args = Args {
            map: args,
            wants_items,
            field: f.name.clone(),
        };
        match self.resolver.resolve(obj, &t.name, &f.name, &args) {
            Ok(out) => self.complete(&def.ty, out, &subsets, f, &t.name),
            Err(e) => {
                self.error(f.pos, e);
                if def.ty.is_non_null() {
                    None
                } else {
                    Some(Ordered::Value(Value::Null))
                }
            }
        }
    }

    /// Whether a connection's selection asks for its items (`nodes` or
    /// `edges`), which GitHub only serves with `first` or `last`.
    fn selects_items(&self, sets: &[&'d [Selection]]) -> bool {
        fn walk(doc: &Document, sels: &[Selection], depth: usize) -> bool {
            depth < 16
                && sels.iter().any(|s| match s {
                    Selection::Field(f) => f.name == "nodes" || f.name == "edges",
                    Selection::Inline { selection, .. } => walk(doc, selection, depth + 1),
                    Selection::Spread { name, .. } => doc
                        .fragments
                        .iter()
                        .find(|f| &f.name == name)
                        .is_some_and(|f| walk(doc, &f.selection, depth + 1)),
                })
        }
        sets.iter().any(|s| walk(self.doc, s, 0))
    }

    fn complete(
        &mut self,
        ty: &TypeRef,
        out: Out<'a>,
        sets: &[&'d [Selection]],
        f: &'d Field,
        parent: &str,
    ) -> Option<Ordered> {
        match ty {
            TypeRef::NonNull(inner) => {
                let v = self.complete(inner, out, sets, f, parent)?;
                if v.is_null() {
                    self.error(
                        f.pos,
                        FieldError::plain(format!(
                            "Cannot return null for non-nullable field {parent}.{}",
                            f.name
                        )),
                    );
                    None
                } else {
                    Some(v)
                }
            }
            TypeRef::List(inner) => match out {
                Out::Null => Some(Ordered::Value(Value::Null)),
                Out::List(items) => {
                    let mut vals = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        self.path.push(json!(i));
                        let v = self.complete(inner, item, sets, f, parent);
                        self.path.pop();
                        vals.push(v?);
                    }
                    Some(Ordered::List(vals))
                }
                _ => {
                    self.error(
                        f.pos,
                        FieldError::plain(format!(
                            "internal sandbox error: {parent}.{} is a list",
                            f.name
                        )),
                    );
                    None
                }
            },
            TypeRef::Named(n) => match out {
                Out::Null => Some(Ordered::Value(Value::Null)),
                Out::Scalar(v) => Some(Ordered::Value(v)),
                Out::Obj(o) => {
                    let concrete = o.type_name();
                    let Some(t) = self
                        .s
                        .get(&concrete)
                        .filter(|_| self.s.applies(&concrete, n))
                    else {
                        self.error(
                            f.pos,
                            FieldError::plain(format!(
                                "internal sandbox error: {concrete} is not a {n}"
                            )),
                        );
                        return None;
                    };
                    self.selection(&o, t, sets).map(Ordered::Map)
                }
                Out::List(_) => {
                    self.error(
                        f.pos,
                        FieldError::plain(format!(
                            "internal sandbox error: {parent}.{} is not a list",
                            f.name
                        )),
                    );
                    None
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::GitHub;
    use crate::github::rest::Ctx;
    use crate::respond::Req;

    /// Runs `query` as the personal token against a sandbox GitHub with
    /// one empty repository; the answer as the client reads it.
    fn answer(port: u16, query: &str, variables: Value) -> (String, Value) {
        let gh = GitHub::new(port).unwrap();
        gh.create_repo("contoso", "payments", "main").unwrap();
        answer_on(&gh, query, variables)
    }

    fn answer_on(gh: &GitHub, query: &str, variables: Value) -> (String, Value) {
        let req = Req {
            method: http::Method::POST,
            host: "github.test".into(),
            path: "/api/graphql".into(),
            raw_query: None,
            query: Vec::new(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
            no_length: false,
        };
        let ctx = Ctx {
            gh,
            req: &req,
            api: "https://github.test/api/v3".into(),
            web: "https://github.test".into(),
        };
        let token = crate::github::auth::token(gh, &gh.personal_token).unwrap();
        let text = {
            let st = gh.state();
            let resolver = Resolver {
                ctx: &ctx,
                st: &st,
                token: &token,
            };
            let vars = variables.as_object().cloned().unwrap_or_default();
            serde_json::to_string(&run(&resolver, query, &vars, None)).unwrap()
        };
        gh.cleanup();
        let v = serde_json::from_str(&text).unwrap();
        (text, v)
    }

    /// A selection of every field of `t` down to `depth`, with the
    /// arguments the fixture answers (`first: 2` on connections).
    fn everything(t: &TypeDef, depth: usize) -> String {
        let s = schema();
        let mut out = vec!["__typename".to_owned()];
        match t.kind {
            Kind::Interface | Kind::Union => {
                for p in s.possible_types(&t.name) {
                    let pt = s.get(p).unwrap();
                    out.push(format!("... on {p} {{ {} }}", everything(pt, depth)));
                }
                return out.join(" ");
            }
            _ => {}
        }
        for f in &t.fields {
            if matches!(f.name.as_str(), "node" | "nodes") && t.name == "Query" {
                continue;
            }
            let mut args: Vec<String> = Vec::new();
            for a in &f.args {
                let v = match (t.name.as_str(), f.name.as_str(), a.name.as_str()) {
                    (_, _, "first") => "2",
                    ("Repository", "pullRequest", "number") => "2",
                    (_, _, "number") => "1",
                    (_, _, "qualifiedName") => "\"main\"",
                    (_, _, "query") => "\"repo:contoso/payments\"",
                    (_, _, "type") => "ISSUE",
                    (_, _, "size") => "40",
                    (_, _, "owner") => "\"contoso\"",
                    (_, _, "name") => "\"payments\"",
                    (_, "isRequired", _) => continue,
                    _ if a.ty.is_non_null() => panic!("{}.{}({})", t.name, f.name, a.name),
                    _ => continue,
                };
                args.push(format!("{}: {v}", a.name));
            }
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let rt = s.get(f.ty.named()).unwrap();
            if rt.kind.is_composite() {
                if depth == 0 {
                    continue;
                }
                out.push(format!(
                    "{}{args} {{ {} }}",
                    f.name,
                    everything(rt, depth - 1)
                ));
            } else {
                out.push(format!("{}{args}", f.name));
            }
        }
        out.join(" ")
    }

    #[test]
    fn every_field_a_client_can_reach_has_an_answer() {
        use crate::github::{Actor, Comment, Item, Label, Pull, git, git_stdin};
        let gh = GitHub::new(61010).unwrap();
        let path = gh.create_repo("contoso", "payments", "main").unwrap();
        let commit = |parent: Option<&str>, file: &str| -> String {
            let blob =
                git_stdin(&path, &["hash-object", "-w", "--stdin"], file.as_bytes()).unwrap();
            let tree = git_stdin(
                &path,
                &["mktree"],
                format!("100644 blob {}\tapp.cfg\n", blob.trim()).as_bytes(),
            )
            .unwrap();
            let mut args = vec!["commit-tree", tree.trim(), "-m", "change\n\nbody"];
            if let Some(p) = parent {
                args.extend(["-p", p]);
            }
            let out = crate::github::git_cmd(&path)
                .args(&args)
                .env("GIT_AUTHOR_NAME", "A")
                .env("GIT_AUTHOR_EMAIL", "a@contoso.test")
                .env("GIT_COMMITTER_NAME", "A")
                .env("GIT_COMMITTER_EMAIL", "a@contoso.test")
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let c1 = commit(None, "a\n");
        let c2 = commit(Some(&c1), "a\nb\n");
        git(&path, &["update-ref", "refs/heads/main", &c1]).unwrap();
        git(&path, &["update-ref", "refs/heads/pick", &c2]).unwrap();
        {
            let mut st = gh.state();
            let r = st.repos.values_mut().next().unwrap();
            let now = chrono::Utc::now();
            let item = |number: u64, pull: Option<Pull>| Item {
                number,
                id: 10 + number,
                pr_id: 20 + number,
                title: format!("item {number}"),
                body: Some("@sandbox-user look".into()),
                state: "open".into(),
                state_reason: None,
                labels: vec!["incident".into()],
                assignees: vec!["oncall".into()],
                user: Actor::app_bot(),
                created_at: now,
                updated_at: now,
                closed_at: None,
                pull,
            };
            r.items.push(item(1, None));
            r.items.push(item(
                2,
                Some(Pull {
                    head_ref: "pick".into(),
                    base_ref: "main".into(),
                    draft: true,
                    maintainer_can_modify: false,
                }),
            ));
            r.comments.push(Comment {
                id: 30,
                issue: 1,
                body: "update".into(),
                user: Actor::personal(),
                created_at: now,
            });
            r.labels.insert(
                "incident".into(),
                Label {
                    id: 40,
                    name: "incident".into(),
                    color: "d73a4a".into(),
                },
            );
        }
        let query = format!("{{ {} }}", everything(schema().get("Query").unwrap(), 4));
        let (_, v) = answer_on(&gh, &query, json!({}));
        assert_eq!(v.get("errors"), None, "{query}");
        let r = &v["data"]["repository"];
        assert_eq!(r["issue"]["author"]["login"], "expedite-sandbox");
        assert_eq!(r["pullRequest"]["headRefOid"], c2.as_str());
        assert_eq!(r["pullRequest"]["commits"]["totalCount"], 1);
        assert_eq!(r["issue"]["comments"]["nodes"][0]["body"], "update");
        assert_eq!(v["data"]["search"]["issueCount"], 2);
    }

    #[test]
    fn answers_keep_the_query_order_and_merge_fields() {
        let (text, _) = answer(
            61001,
            "{ viewer { login } r: repository(owner: \"contoso\", name: \"payments\") { nameWithOwner isPrivate } viewer { databaseId } }",
            json!({}),
        );
        assert_eq!(
            text,
            r#"{"data":{"viewer":{"login":"sandbox-user","databaseId":1001},"r":{"nameWithOwner":"contoso/payments","isPrivate":true}}}"#
        );
    }

    #[test]
    fn directives_variables_and_defaults() {
        let q = "query($yes: Boolean!, $s: [IssueState!] = OPEN) { repository(owner: \"contoso\", name: \"payments\") { name @include(if: $yes) id @skip(if: $yes) issues(states: $s) { totalCount } } }";
        let (_, v) = answer(61002, q, json!({"yes": true}));
        assert_eq!(
            v,
            json!({"data": {"repository": {"name": "payments", "issues": {"totalCount": 0}}}})
        );
        let (_, v) = answer(61003, q, json!({"yes": "no"}));
        assert_eq!(
            v["errors"][0]["message"],
            "Variable $yes of type Boolean! was provided invalid value"
        );
        let (_, v) = answer(61004, q, json!({"yes": true, "s": ["SHUT"]}));
        assert!(
            v["errors"][0]["extensions"]["problems"][0]["explanation"]
                .as_str()
                .unwrap()
                .contains("CLOSED, OPEN")
        );
    }

    #[test]
    fn a_failing_non_null_field_nulls_its_parent() {
        // `nodes` is `[Node]!`: its error leaves no data at all.
        let (_, v) = answer(61005, "{ nodes(ids: [\"bm9wZQ==\"]) { id } }", json!({}));
        assert_eq!(v["data"], Value::Null);
        assert_eq!(v["errors"][0]["path"], json!(["nodes"]));
        assert_eq!(v["errors"][0]["type"], "NOT_FOUND");
    }

    #[test]
    fn documents_are_checked_whole() {
        for (q, message) in [
            (
                "{ viewer { a: login a: id } }",
                "Field 'a' has a field conflict: login or id?",
            ),
            (
                "{ viewer { ...f } }",
                "Fragment f was used, but not defined",
            ),
            (
                "fragment f on User { login } { viewer { login } }",
                "Fragment f was defined, but not used",
            ),
            (
                "fragment f on User { ...g } fragment g on User { ...f } { viewer { ...f } }",
                "Fragment f contains an infinite loop",
            ),
            (
                "{ viewer { ... on Issue { title } } }",
                "Fragment on Issue can't be spread inside User",
            ),
            (
                "{ viewer }",
                "Field must have selections (field 'viewer' returns User! but has no selections. Did you mean 'viewer { ... }'?)",
            ),
            (
                "{ viewer { login { x } } }",
                "Selections can't be made on scalars (field 'login' returns String but has selections [x])",
            ),
            (
                "query($x: Int) { viewer { login } }",
                "Variable $x is declared by anonymous query but not used",
            ),
            (
                "query Q { viewer { login } } query Q { viewer { id } }",
                "An operation name is required",
            ),
            (
                "{ viewer @live { login } }",
                "Directive @live is not defined",
            ),
        ] {
            let (_, v) = answer(61006, q, json!({}));
            assert!(v.get("data").is_none(), "{q}: {v}");
            let messages: Vec<&str> = v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap())
                .collect();
            assert!(messages.contains(&message), "{q}: {messages:?}");
        }
    }
}
