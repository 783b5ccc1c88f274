//! GitHub's git database write and read endpoints — blobs, trees, commit
//! creation — on the real bare repositories, with git plumbing
//! (`hash-object -w`, `mktree`, `cat-file`, `ls-tree`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use chrono::DateTime;
use http::StatusCode;
use serde_json::{Value, json};

use super::{
    Ctx, R, Token, commit_info, error, fnv, git_commit_json, invalid, is_hex, node_id, not_found,
    object_type, unprocessable,
};
use crate::github::{git, git_bytes, git_stdin};
use crate::respond::{self, Resp};

/// Largest blob GitHub's git database API accepts or returns (100 MB).
pub(super) const MAX_BLOB: usize = 100 * 1024 * 1024;
/// Entries GitHub lists before it sets `truncated` (get-a-tree docs).
const MAX_TREE_LISTING: usize = 100_000;
/// Entries one create-a-tree request may carry (bounds the work).
const MAX_TREE_INPUT: usize = 100_000;
/// Path components one tree entry may have.
const MAX_DEPTH: usize = 256;

fn missing(field: &str, doc: &str) -> Resp {
    unprocessable(
        &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
        doc,
    )
}

fn not_a(kind: &str, field: &str, v: &Value, doc: &str) -> Resp {
    unprocessable(
        &format!("Invalid request.\n\nFor 'properties/{field}', {v} is not {kind}."),
        doc,
    )
}

fn full_sha(path: &Path, rev: &str, kind: &str) -> Option<String> {
    if !is_hex(rev) {
        return None;
    }
    git(
        path,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{{kind}}}"),
        ],
    )
    .ok()
    .map(|s| s.trim().to_owned())
    .filter(|s| s.len() == 40)
}

/// Base64 the way GitHub's (Ruby's `encode64`) does: a newline after every
/// 60 characters and at the end.
fn encode64(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for line in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Base64 as clients send it: line breaks and other whitespace ignored,
/// padding optional.
fn decode64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    lenient.decode(compact).ok()
}

fn too_large(doc: &str) -> Resp {
    invalid(
        doc,
        json!([{"resource": "Blob", "field": "content", "code": "too_large",
                "message": "content is too large (maximum is 100 MB)"}]),
    )
}

/// Writes a blob; its full SHA.
fn write_blob(path: &Path, bytes: &[u8], doc: &str) -> R<String> {
    git_stdin(path, &["hash-object", "-w", "-t", "blob", "--stdin"], bytes)
        .map(|s| s.trim().to_owned())
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e, doc))
}

/// `POST /repos/{o}/{r}/git/blobs`.
pub(super) fn create_blob(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    doc: &str,
) -> R<Resp> {
    let body = super::body_json(ctx.req, doc)?;
    let content = match body.get("content") {
        None | Some(Value::Null) => return Err(missing("content", doc)),
        Some(Value::String(c)) => c,
        Some(other) => return Err(not_a("a string", "content", other, doc)),
    };
    let encoding = match body.get("encoding") {
        None | Some(Value::Null) => "utf-8".to_owned(),
        Some(Value::String(e)) => e.to_ascii_lowercase(),
        Some(other) => return Err(not_a("a string", "encoding", other, doc)),
    };
    let decoded: std::borrow::Cow<'_, [u8]> = match encoding.as_str() {
        "utf-8" | "utf8" => {
            if content.len() > MAX_BLOB {
                return Err(too_large(doc));
            }
            content.as_bytes().into()
        }
        "base64" => {
            // Decoded size is about 3/4 of the text: refuse before decoding.
            if content.len() / 4 * 3 > MAX_BLOB + 3 {
                return Err(too_large(doc));
            }
            match decode64(content) {
                Some(b) => b.into(),
                None => {
                    return Err(invalid(
                        doc,
                        json!([{"resource": "Blob", "field": "content", "code": "invalid",
                                "message": "content is not valid Base64"}]),
                    ));
                }
            }
        }
        other => {
            return Err(unprocessable(
                &format!(
                    "Invalid request.\n\nencoding '{other}' is not supported: use utf-8 or base64."
                ),
                doc,
            ));
        }
    };
    if decoded.len() > MAX_BLOB {
        return Err(too_large(doc));
    }
    let sha = write_blob(path, &decoded, doc)?;
    let url = format!("{}/repos/{owner}/{repo}/git/blobs/{sha}", ctx.api);
    let mut resp = respond::json(StatusCode::CREATED, &json!({"url": url, "sha": sha}));
    respond::set_header(&mut resp, "location", &url);
    Ok(resp)
}

/// Whether the client asked for the raw media type.
fn wants_raw(ctx: &Ctx<'_>) -> bool {
    ctx.req
        .headers
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| {
            v.to_str().unwrap_or("").split(',').any(|m| {
                let essence = m
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                matches!(
                    essence.as_str(),
                    "application/vnd.github.raw"
                        | "application/vnd.github.raw+json"
                        | "application/vnd.github.v3.raw"
                        | "application/vnd.github.v3.raw+json"
                )
            })
        })
}

/// `GET /repos/{o}/{r}/git/blobs/{sha}`.
pub(super) fn get_blob(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    sha: &str,
    doc: &str,
) -> R<Resp> {
    let full = full_sha(path, sha, "blob")
        .filter(|_| object_type(path, sha).as_deref() == Some("blob"))
        .ok_or_else(|| not_found(doc))?;
    let size: usize = git(path, &["cat-file", "-s", &full])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| not_found(doc))?;
    if size > MAX_BLOB {
        return Err(error(
            StatusCode::FORBIDDEN,
            "This API returns blobs up to 100 MB in size. The requested blob is too large to fetch via the API.",
            doc,
        ));
    }
    let bytes = git_bytes(path, &["cat-file", "blob", &full])
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e, doc))?;
    if wants_raw(ctx) {
        let mut r = respond::build(
            StatusCode::OK,
            Some("application/octet-stream"),
            bytes::Bytes::from(bytes),
        );
        respond::set_header(&mut r, "x-github-media-type", "github.v3; param=raw");
        return Ok(r);
    }
    Ok(respond::json(
        StatusCode::OK,
        &json!({
            "sha": full,
            "node_id": node_id("Blob", fnv(&full)),
            "size": bytes.len(),
            "url": format!("{}/repos/{owner}/{repo}/git/blobs/{full}", ctx.api),
            "content": encode64(&bytes),
            "encoding": "base64",
        }),
    ))
}

// ---------------------------------------------------------------- trees

struct Entry {
    mode: String,
    kind: String,
    sha: String,
    size: Option<u64>,
    path: String,
}

/// `git ls-tree -z -l` of a tree (recursively with `-r -t`).
fn ls_tree(path: &Path, tree: &str, recursive: bool) -> Vec<Entry> {
    let mut args = vec!["ls-tree", "-z", "-l"];
    if recursive {
        args.extend(["-r", "-t"]);
    }
    args.push(tree);
    let out = git_bytes(path, &args).unwrap_or_default();
    out.split(|b| *b == 0)
        .filter(|rec| !rec.is_empty())
        .filter_map(|rec| {
            let tab = rec.iter().position(|b| *b == b'\t')?;
            let meta = std::str::from_utf8(&rec[..tab]).ok()?;
            let name = String::from_utf8_lossy(&rec[tab + 1..]).into_owned();
            let mut f = meta.split_whitespace();
            let (mode, kind, sha) = (f.next()?, f.next()?, f.next()?);
            Some(Entry {
                mode: mode.to_owned(),
                kind: kind.to_owned(),
                sha: sha.to_owned(),
                size: f.next().and_then(|s| s.parse().ok()),
                path: name,
            })
        })
        .collect()
}

fn tree_json(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    sha: &str,
    recursive: bool,
) -> Value {
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    let all = ls_tree(path, sha, recursive);
    let truncated = all.len() > MAX_TREE_LISTING;
    let tree: Vec<Value> = all
        .iter()
        .take(MAX_TREE_LISTING)
        .map(|e| {
            let mut v = json!({"path": e.path, "mode": e.mode, "type": e.kind, "sha": e.sha});
            match e.kind.as_str() {
                "blob" => {
                    v["size"] = json!(e.size.unwrap_or(0));
                    v["url"] = json!(format!("{api}/git/blobs/{}", e.sha));
                }
                "tree" => v["url"] = json!(format!("{api}/git/trees/{}", e.sha)),
                _ => {}
            }
            v
        })
        .collect();
    json!({
        "sha": sha,
        "url": format!("{api}/git/trees/{sha}"),
        "tree": tree,
        "truncated": truncated,
    })
}

/// `GET /repos/{o}/{r}/git/trees/{tree_sha}`: a tree SHA, or a commit or
/// ref name whose tree is meant.
pub(super) fn get_tree(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    rev: &str,
    doc: &str,
) -> R<Resp> {
    if rev.is_empty() || rev.starts_with('-') || rev.contains("..") || rev.contains(':') {
        return Err(not_found(doc));
    }
    let sha = git(
        path,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{tree}}"),
        ],
    )
    .ok()
    .map(|s| s.trim().to_owned())
    .filter(|s| s.len() == 40)
    .ok_or_else(|| not_found(doc))?;
    let recursive = ctx.req.query_param("recursive").is_some();
    Ok(respond::json(
        StatusCode::OK,
        &tree_json(ctx, path, owner, repo, &sha, recursive),
    ))
}

#[derive(Clone)]
struct Leaf {
    mode: String,
    kind: String,
    sha: String,
}

/// A directory being edited: entries not touched stay as they were
/// (`Leaf`, possibly a subtree by SHA); touched subdirectories are
/// expanded (`Dir`).
#[derive(Default)]
struct Dir {
    entries: BTreeMap<String, Node>,
}

enum Node {
    Leaf(Leaf),
    Dir(Dir),
}

fn load_dir(path: &Path, tree: &str) -> Dir {
    let entries = ls_tree(path, tree, false)
        .into_iter()
        .map(|e| {
            (
                e.path,
                Node::Leaf(Leaf {
                    mode: e.mode,
                    kind: e.kind,
                    sha: e.sha,
                }),
            )
        })
        .collect();
    Dir { entries }
}

fn bad_state(doc: &str) -> Resp {
    unprocessable("GitRPC::BadObjectState", doc)
}

/// Sets (or, with `None`, deletes) `components` below `root`.
fn apply(path: &Path, root: &mut Dir, components: &[&str], leaf: Option<Leaf>, doc: &str) -> R<()> {
    let Some((last, dirs)) = components.split_last() else {
        return Err(malformed_path(doc));
    };
    let mut dir = root;
    for comp in dirs {
        let replace = match dir.entries.get(*comp) {
            Some(Node::Dir(_)) => None,
            Some(Node::Leaf(l)) if l.kind == "tree" => Some(load_dir(path, &l.sha)),
            Some(Node::Leaf(_)) | None if leaf.is_none() => return Err(bad_state(doc)),
            Some(Node::Leaf(_)) | None => Some(Dir::default()),
        };
        if let Some(d) = replace {
            dir.entries.insert((*comp).to_owned(), Node::Dir(d));
        }
        dir = match dir.entries.get_mut(*comp) {
            Some(Node::Dir(d)) => d,
            _ => return Err(bad_state(doc)),
        };
    }
    match leaf {
        Some(l) => {
            dir.entries.insert((*last).to_owned(), Node::Leaf(l));
        }
        None => {
            if dir.entries.remove(*last).is_none() {
                return Err(bad_state(doc));
            }
        }
    }
    Ok(())
}

/// Writes an edited directory with `mktree`; `None` when it ended up empty
/// (git keeps no empty directories, so the parent drops it).
fn write_dir(path: &Path, dir: &Dir, depth: usize, doc: &str) -> R<Option<String>> {
    if depth > MAX_DEPTH {
        return Err(malformed_path(doc));
    }
    let mut input = Vec::new();
    for (name, node) in &dir.entries {
        let (mode, kind, sha) = match node {
            Node::Leaf(l) => (l.mode.clone(), l.kind.clone(), l.sha.clone()),
            Node::Dir(d) => match write_dir(path, d, depth + 1, doc)? {
                Some(sha) => ("040000".to_owned(), "tree".to_owned(), sha),
                None => continue,
            },
        };
        input.extend_from_slice(format!("{mode} {kind} {sha}\t{name}").as_bytes());
        input.push(0);
    }
    if input.is_empty() && depth > 0 {
        return Ok(None);
    }
    git_stdin(path, &["mktree", "-z"], &input)
        .map(|s| Some(s.trim().to_owned()))
        .map_err(|_| bad_state(doc))
}

fn malformed_path(doc: &str) -> Resp {
    unprocessable("tree.path contains a malformed path component", doc)
}

const MODES: &[&str] = &["100644", "100755", "040000", "160000", "120000"];

/// The kind of object a tree mode points at.
fn kind_of(mode: &str) -> &'static str {
    match mode {
        "040000" => "tree",
        "160000" => "commit",
        _ => "blob",
    }
}

/// `POST /repos/{o}/{r}/git/trees`.
pub(super) fn create_tree(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    doc: &str,
) -> R<Resp> {
    let body = super::body_json(ctx.req, doc)?;
    let items = match body.get("tree") {
        None | Some(Value::Null) => return Err(missing("tree", doc)),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(not_a("an array", "tree", other, doc)),
    };
    if items.len() > MAX_TREE_INPUT {
        return Err(unprocessable(
            &format!(
                "Invalid request.\n\nA tree may be created with at most {MAX_TREE_INPUT} entries."
            ),
            doc,
        ));
    }
    let mut root = match body.get("base_tree") {
        None | Some(Value::Null) => Dir::default(),
        Some(Value::String(b)) => {
            if object_type(path, b).as_deref() != Some("tree") {
                return Err(unprocessable("base_tree is not a valid tree oid", doc));
            }
            load_dir(path, b)
        }
        Some(other) => return Err(not_a("a string", "base_tree", other, doc)),
    };
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(not_a("an object", "tree/items", item, doc));
        };
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        let Some(tree_path) = s("path") else {
            return Err(missing("path", doc));
        };
        let components: Vec<&str> = tree_path.split('/').collect();
        if components.len() > MAX_DEPTH
            || components.iter().any(|c| {
                c.is_empty()
                    || *c == "."
                    || *c == ".."
                    || c.eq_ignore_ascii_case(".git")
                    || c.contains('\0')
            })
        {
            return Err(malformed_path(doc));
        }
        let Some(mode) = s("mode") else {
            return Err(missing("mode", doc));
        };
        if !MODES.contains(&mode) {
            return Err(unprocessable(
                &format!(
                    "Invalid request.\n\nFor 'properties/mode', \"{mode}\" is not one of [\"100644\", \"100755\", \"040000\", \"160000\", \"120000\"]."
                ),
                doc,
            ));
        }
        let kind = kind_of(mode);
        if let Some(t) = obj.get("type")
            && t.as_str() != Some(kind)
        {
            if !matches!(t.as_str(), Some("blob" | "tree" | "commit")) {
                return Err(unprocessable(
                    &format!(
                        "Invalid request.\n\nFor 'properties/type', {t} is not one of [\"blob\", \"tree\", \"commit\"]."
                    ),
                    doc,
                ));
            }
            return Err(bad_state(doc));
        }
        let content = obj.get("content");
        let sha = obj.get("sha");
        let leaf = match (sha, content) {
            (Some(Value::String(_)), Some(c)) if !c.is_null() => {
                return Err(unprocessable(
                    "Invalid request.\n\nOnly one of \"sha\" or \"content\" may be supplied.",
                    doc,
                ));
            }
            (_, Some(Value::String(text))) => {
                if kind != "blob" {
                    return Err(bad_state(doc));
                }
                if text.len() > MAX_BLOB {
                    return Err(too_large(doc));
                }
                Some(Leaf {
                    mode: mode.to_owned(),
                    kind: kind.to_owned(),
                    sha: write_blob(path, text.as_bytes(), doc)?,
                })
            }
            (_, Some(other)) if !other.is_null() => {
                return Err(not_a("a string", "content", other, doc));
            }
            (Some(Value::Null), _) => None,
            (Some(Value::String(sha)), _) => {
                let ok = sha.len() == 40
                    && is_hex(sha)
                    && (kind == "commit" || object_type(path, sha).as_deref() == Some(kind));
                if !ok {
                    return Err(unprocessable(
                        &format!("tree.sha {sha} is not a valid {kind}"),
                        doc,
                    ));
                }
                Some(Leaf {
                    mode: mode.to_owned(),
                    kind: kind.to_owned(),
                    sha: sha.to_ascii_lowercase(),
                })
            }
            (Some(other), _) => return Err(not_a("a string", "sha", other, doc)),
            (None, _) => {
                return Err(unprocessable(
                    "Invalid request.\n\nEither \"sha\" or \"content\" must be supplied.",
                    doc,
                ));
            }
        };
        apply(path, &mut root, &components, leaf, doc)?;
    }
    let sha = write_dir(path, &root, 0, doc)?.ok_or_else(|| bad_state(doc))?;
    let mut resp = respond::json(
        StatusCode::CREATED,
        &tree_json(ctx, path, owner, repo, &sha, false),
    );
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{owner}/{repo}/git/trees/{sha}", ctx.api),
    );
    Ok(resp)
}

// ---------------------------------------------------------------- commits

/// `name <email> <epoch> <+hhmm>` from an `author`/`committer` object.
fn ident(v: Option<&Value>, field: &str, fallback: &str, doc: &str) -> R<String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(fallback.to_owned());
    };
    let Some(obj) = v.as_object() else {
        return Err(not_a("an object", field, v, doc));
    };
    // git's ident rules: no angle brackets or newlines in names or e-mails.
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let (Some(name), Some(email)) = (
        obj.get("name").and_then(Value::as_str),
        obj.get("email").and_then(Value::as_str),
    ) else {
        let which = if obj.get("name").and_then(Value::as_str).is_none() {
            "name"
        } else {
            "email"
        };
        return Err(missing(which, doc));
    };
    let when = match obj.get("date") {
        None | Some(Value::Null) => chrono::Utc::now().fixed_offset(),
        Some(Value::String(d)) => DateTime::parse_from_rfc3339(d).map_err(|_| {
            unprocessable(
                &format!("Invalid request.\n\nFor 'properties/date', \"{d}\" is not a date-time."),
                doc,
            )
        })?,
        Some(other) => return Err(not_a("a string", "date", other, doc)),
    };
    let off = when.offset().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    Ok(format!(
        "{} <{}> {} {sign}{:02}{:02}",
        clean(name),
        clean(email),
        when.timestamp(),
        off / 3600,
        off % 3600 / 60
    ))
}

/// `POST /repos/{o}/{r}/git/commits`.
pub(super) fn create_commit(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    token: &Token,
    doc: &str,
) -> R<Resp> {
    let body = super::body_json(ctx.req, doc)?;
    let message = match body.get("message") {
        None | Some(Value::Null) => return Err(missing("message", doc)),
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(not_a("a string", "message", other, doc)),
    };
    let tree = match body.get("tree") {
        None | Some(Value::Null) => return Err(missing("tree", doc)),
        Some(Value::String(t)) => t.clone(),
        Some(other) => return Err(not_a("a string", "tree", other, doc)),
    };
    let tree = match object_type(path, &tree).as_deref() {
        Some("tree") => full_sha(path, &tree, "tree").ok_or_else(|| not_found(doc))?,
        Some(_) => return Err(unprocessable("Tree SHA is not a tree object", doc)),
        None => return Err(unprocessable("Tree SHA does not exist", doc)),
    };
    let parents: Vec<String> = match body.get("parents") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for p in a {
                let Some(p) = p.as_str() else {
                    return Err(not_a("a string", "parents/items", p, doc));
                };
                let full = (object_type(path, p).as_deref() == Some("commit"))
                    .then(|| full_sha(path, p, "commit"))
                    .flatten()
                    .ok_or_else(|| {
                        unprocessable("Parent SHA does not exist or is not a commit object", doc)
                    })?;
                out.push(full);
            }
            out
        }
        Some(other) => return Err(not_a("an array", "parents", other, doc)),
    };
    let now = chrono::Utc::now().timestamp();
    let default = format!(
        "{} <{}+{}@users.noreply.github.test> {now} +0000",
        token.actor.login, token.actor.id, token.actor.login
    );
    let author = ident(body.get("author"), "author", &default, doc)?;
    let committer = ident(body.get("committer"), "committer", &author, doc)?;
    let mut raw = format!("tree {tree}\n");
    for p in &parents {
        raw.push_str(&format!("parent {p}\n"));
    }
    raw.push_str(&format!("author {author}\ncommitter {committer}\n"));
    match body.get("signature") {
        None | Some(Value::Null) => {}
        Some(Value::String(sig)) if !sig.trim().is_empty() => {
            // An extra header: continuation lines start with a space.
            let sig = sig.trim_end_matches('\n').replace('\n', "\n ");
            raw.push_str(&format!("gpgsig {sig}\n"));
        }
        Some(Value::String(_)) => {}
        Some(other) => return Err(not_a("a string", "signature", other, doc)),
    }
    raw.push('\n');
    raw.push_str(&message);
    let sha = git_stdin(
        path,
        &["hash-object", "-w", "-t", "commit", "--stdin"],
        raw.as_bytes(),
    )
    .map_err(|e| unprocessable(&format!("Invalid commit: {e}"), doc))?;
    let sha = sha.trim();
    let c = commit_info(path, sha)
        .ok_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error", doc))?;
    let mut resp = respond::json(StatusCode::CREATED, &git_commit_json(ctx, owner, repo, &c));
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{owner}/{repo}/git/commits/{sha}", ctx.api),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_github() {
        assert_eq!(encode64(b""), "");
        assert_eq!(encode64(b"hello"), "aGVsbG8=\n");
        let long = encode64(&[7u8; 100]);
        let lines: Vec<&str> = long.split_terminator('\n').collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [60, 60, 16]
        );
        assert!(long.ends_with('\n'));
        assert_eq!(decode64(&long).unwrap(), vec![7u8; 100]);
        assert_eq!(decode64("aGVsbG8").unwrap(), b"hello");
        assert!(decode64("not base64!").is_none());
    }
}
