//! The REST subset on `api.github.test`, shaped like api.github.com (bodies
//! carry every field the OpenAPI description marks required; the fidelity
//! script validates them against `@octokit/openapi`). Git data is read from
//! and written to the bare repositories with git itself. Successful GETs
//! carry a weak ETag and honour `If-None-Match` ([`conditional`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::{self, Cred};
use super::{
    APP_CLIENT_ID, APP_ID, APP_SLUG, Actor, Comment, Deployment, DeploymentStatus, GitHub, Item,
    Label, Pull, Repo, State, Token, git, git_stdin, repo_key,
};
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;

mod git_data;
mod runs;

const DOCS: &str = "https://docs.github.com/rest";
const Z40: &str = "0000000000000000000000000000000000000000";

/// Which API a request on either GitHub host is for.
enum Layout {
    /// REST: the path below the API root, and that root.
    Rest(String, String),
    /// GraphQL, with the REST root its answers link to.
    Graphql(String),
    NotFound,
}

/// `api.github.test/<rest path>` and `/graphql` (github.com's layout);
/// `github.test/api/v3/<rest path>` and `/api/graphql` (GitHub Enterprise
/// Server's, which gh uses for every host but github.com): the same
/// handlers, credentials and state, answers linking to the layout asked.
fn layout(gh: &GitHub, req: &Req) -> Layout {
    if req.host == super::GIT_HOST {
        let root = format!("{}/api/v3", gh.server_url);
        if req.path == "/api/graphql" {
            return Layout::Graphql(root);
        }
        return match req.path.strip_prefix("/api/v3") {
            Some("") => Layout::Rest("/".to_owned(), root),
            Some(rest) if rest.starts_with('/') => Layout::Rest(rest.to_owned(), root),
            _ => Layout::NotFound,
        };
    }
    if req.path == "/graphql" {
        return Layout::Graphql(gh.api_url.clone());
    }
    Layout::Rest(req.path.clone(), gh.api_url.clone())
}

/// Entry point from the HTTPS router (runs the blocking work off the
/// reactor: every handler shells out to git).
pub(crate) async fn handle_api(shared: &Shared, req: &Req) -> Outcome {
    let gh = shared.github.clone();
    let mut owned = req.clone();
    let (root, graphql) = match layout(&gh, req) {
        Layout::Rest(path, root) => {
            owned.path = path;
            (root, false)
        }
        Layout::Graphql(root) => (root, true),
        Layout::NotFound => {
            let mut r = not_found(DOCS);
            decorate(&mut r, "core");
            return r.into();
        }
    };
    let rest_path = owned.path.clone();
    let resp = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            gh: &gh,
            req: &owned,
            api: root,
            web: gh.server_url.clone(),
        };
        let mut r = if graphql {
            super::graphql::handle(&ctx)
        } else {
            api(&ctx)
        };
        decorate(&mut r, if graphql { "graphql" } else { "core" });
        r
    })
    .await
    .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error", DOCS));
    // Applied, and the answer lost on the way (`/_sandbox/github/drop-answers`).
    if !graphql
        && shared
            .github
            .state()
            .take_drop_answer(req.method.as_str(), &rest_path)
    {
        return Outcome::Drop;
    }
    conditional(req, resp).await.into()
}

/// GitHub's conditional requests: a successful GET carries a weak `ETag`
/// (a hash of the body) and the caching headers; a request whose
/// `If-None-Match` matches it gets `304 Not Modified` with no body.
async fn conditional(req: &Req, resp: Resp) -> Resp {
    use http_body_util::BodyExt;
    if req.method != Method::GET || resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(never) => match never {},
    };
    let tag = etag(&bytes);
    let headers = &mut parts.headers;
    for (k, v) in [
        ("etag", tag.as_str()),
        ("cache-control", "private, max-age=60, s-maxage=60"),
        (
            "vary",
            "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
        ),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    }
    if if_none_match(req, &tag) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(http::header::CONTENT_TYPE);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return http::Response::from_parts(parts, http_body_util::Full::new(bytes::Bytes::new()));
    }
    http::Response::from_parts(parts, http_body_util::Full::new(bytes))
}

/// `W/"<32 hex>"`: FNV-1a (128-bit) of the body, the shape of GitHub's
/// weak ETags.
fn etag(body: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let h = body
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("W/\"{h:032x}\"")
}

/// Whether `If-None-Match` names `tag` (weak comparison, `*` matches).
fn if_none_match(req: &Req, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = opaque(tag);
    req.headers
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

fn decorate(r: &mut Resp, resource: &str) {
    let reset = (Utc::now().timestamp() + 3600).to_string();
    for (k, v) in [
        ("x-github-api-version-selected", "2022-11-28"),
        ("x-github-media-type", "github.v3; format=json"),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-used", "1"),
        ("x-ratelimit-resource", resource),
    ] {
        respond::set_header(r, k, v);
    }
    respond::set_header(r, "x-ratelimit-reset", &reset);
    respond::set_header(
        r,
        "x-github-request-id",
        &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..20],
    );
}

// ---------------------------------------------------------------- errors

type R<T> = Result<T, Resp>;

fn error(status: StatusCode, message: &str, doc: &str) -> Resp {
    respond::json(
        status,
        &json!({"message": message, "documentation_url": doc, "status": status.as_str()}),
    )
}

fn not_found(doc: &str) -> Resp {
    error(StatusCode::NOT_FOUND, "Not Found", doc)
}

fn invalid(doc: &str, errors: Value) -> Resp {
    respond::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"message": "Validation Failed", "errors": errors, "documentation_url": doc, "status": "422"}),
    )
}

fn unprocessable(message: &str, doc: &str) -> Resp {
    error(StatusCode::UNPROCESSABLE_ENTITY, message, doc)
}

fn forbidden_integration(doc: &str) -> Resp {
    error(
        StatusCode::FORBIDDEN,
        "Resource not accessible by integration",
        doc,
    )
}

fn empty_repo(doc: &str) -> Resp {
    error(StatusCode::CONFLICT, "Git Repository is empty.", doc)
}

fn body_json(req: &Req, doc: &str) -> R<Value> {
    match req.json_body() {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Ok(json!({})),
        Err(_) => Err(error(StatusCode::BAD_REQUEST, "Problems parsing JSON", doc)),
    }
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn node_id(kind: &str, id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("0:{kind}{id}"))
}

// ---------------------------------------------------------------- routing

pub(super) struct Ctx<'a> {
    pub gh: &'a GitHub,
    pub req: &'a Req,
    /// The API root answers link to (`https://api.github.test`, or
    /// `https://github.test/api/v3` when asked there).
    pub api: String,
    pub web: String,
}

fn api(ctx: &Ctx<'_>) -> Resp {
    match route(ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn route(ctx: &Ctx<'_>) -> R<Resp> {
    let segs = ctx.req.segments();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = ctx.req.method.clone();
    match s.as_slice() {
        ["app"] if m == Method::GET => {
            app_auth(
                ctx,
                "https://docs.github.com/rest/apps/apps#get-the-authenticated-app",
            )?;
            Ok(respond::json(StatusCode::OK, &app_json(ctx)))
        }
        ["app", "installations"] if m == Method::GET => {
            app_auth(ctx, DOCS)?;
            let st = ctx.gh.state();
            let list: Vec<Value> = st
                .installations
                .values()
                .map(|i| installation_json(ctx, i))
                .collect();
            Ok(respond::json(StatusCode::OK, &json!(list)))
        }
        ["app", "installations", id] if m == Method::GET => {
            let doc = "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app";
            app_auth(ctx, doc)?;
            let st = ctx.gh.state();
            st.installations
                .values()
                .find(|i| i.id.to_string() == *id)
                .map(|i| respond::json(StatusCode::OK, &installation_json(ctx, i)))
                .ok_or_else(|| not_found(doc))
        }
        ["app", "installations", id, "access_tokens"] if m == Method::POST => mint_token(ctx, id),
        ["installation", "token"] if m == Method::DELETE => {
            let doc = "https://docs.github.com/rest/apps/installations#revoke-an-installation-access-token";
            match auth::credential(&ctx.req.headers) {
                Cred::Token(t) if t.starts_with("ghs_") && auth::token(ctx.gh, &t).is_some() => {
                    ctx.gh.state().tokens.remove(&t);
                    Ok(respond::empty(StatusCode::NO_CONTENT))
                }
                _ => Err(error(StatusCode::UNAUTHORIZED, "Bad credentials", doc)),
            }
        }
        ["repos", owner, repo, "installation"] if m == Method::GET => {
            let doc = "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app";
            app_auth(ctx, doc)?;
            let st = ctx.gh.state();
            if !st.repos.contains_key(&repo_key(owner, repo)) {
                return Err(not_found(doc));
            }
            st.installations
                .get(&owner.to_ascii_lowercase())
                .map(|i| respond::json(StatusCode::OK, &installation_json(ctx, i)))
                .ok_or_else(|| not_found(doc))
        }
        ["repos", owner, repo, tail @ ..] => repo_route(ctx, owner, repo, tail),
        _ => Err(not_found(DOCS)),
    }
}

/// JWT-only endpoints.
fn app_auth(ctx: &Ctx<'_>, doc: &str) -> R<()> {
    match auth::credential(&ctx.req.headers) {
        Cred::Jwt(j) => auth::verify_app_jwt(ctx.gh, &j)
            .map_err(|msg| error(StatusCode::UNAUTHORIZED, msg, doc)),
        Cred::Token(t) if t.contains('.') => {
            // A JWT sent with `token`: GitHub treats it as an OAuth token.
            Err(error(StatusCode::UNAUTHORIZED, "Bad credentials", doc))
        }
        _ => Err(error(StatusCode::UNAUTHORIZED, auth::UNDECODABLE, doc)),
    }
}

/// Token endpoints: the caller's token, or the error to answer.
fn token_auth(ctx: &Ctx<'_>, doc: &str) -> R<Token> {
    match auth::credential(&ctx.req.headers) {
        Cred::None => Err(not_found(doc)),
        Cred::Jwt(_) => Err(forbidden_integration(doc)),
        Cred::Token(t) => auth::token(ctx.gh, &t)
            .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Bad credentials", doc)),
        Cred::Malformed => Err(error(StatusCode::UNAUTHORIZED, "Bad credentials", doc)),
    }
}

fn mint_token(ctx: &Ctx<'_>, id: &str) -> R<Resp> {
    let doc =
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
    app_auth(ctx, doc)?;
    let body = body_json(ctx.req, doc)?;
    let mut st = ctx.gh.state();
    let Some(inst) = st.installations.values().find(|i| i.id.to_string() == id) else {
        return Err(not_found(doc));
    };
    let owner = inst.owner.clone();
    let inst_id = inst.id;
    let mut permissions = inst.permissions.clone();
    if let Some(req_perms) = body.get("permissions").and_then(Value::as_object) {
        let mut narrowed = BTreeMap::new();
        for (k, v) in req_perms {
            let want = v.as_str().unwrap_or("");
            let have = permissions.get(k).map(String::as_str);
            let ok = matches!(
                (want, have),
                ("read", Some("read" | "write" | "admin"))
                    | ("write", Some("write" | "admin"))
                    | ("admin", Some("admin"))
            );
            if !ok {
                return Err(unprocessable(
                    "The permissions requested are not granted to this installation.",
                    doc,
                ));
            }
            narrowed.insert(k.clone(), want.to_owned());
        }
        narrowed
            .entry("metadata".into())
            .or_insert_with(|| "read".into());
        permissions = narrowed;
    }
    let mut selected: Option<BTreeSet<String>> = None;
    let names: Vec<String> = body
        .get("repositories")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let ids: Vec<u64> = body
        .get("repository_ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if !names.is_empty() || !ids.is_empty() {
        let mut set = BTreeSet::new();
        for n in &names {
            let n = n.rsplit('/').next().unwrap_or(n);
            if !st.repos.contains_key(&repo_key(&owner, n)) {
                return Err(unprocessable(
                    "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    doc,
                ));
            }
            set.insert(n.to_ascii_lowercase());
        }
        for i in &ids {
            match st
                .repos
                .values()
                .find(|r| r.id == *i && r.owner.eq_ignore_ascii_case(&owner))
            {
                Some(r) => {
                    set.insert(r.name.to_ascii_lowercase());
                }
                None => {
                    return Err(unprocessable(
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                        doc,
                    ));
                }
            }
        }
        selected = Some(set);
    }
    let token = format!("ghs_{}", crate::random_token(36));
    let expires_at = Utc::now() + chrono::Duration::hours(1);
    st.tokens.insert(
        token.clone(),
        Token {
            actor: Actor::app_bot(),
            installation: Some(inst_id),
            owner: Some(owner.clone()),
            repositories: selected.clone(),
            permissions: permissions.clone(),
            expires_at: Some(expires_at),
        },
    );
    let mut out = json!({
        "token": token,
        "expires_at": iso(expires_at),
        "permissions": permissions,
        "repository_selection": if selected.is_some() { "selected" } else { "all" },
    });
    if let Some(set) = &selected {
        let repos: Vec<Value> = st
            .repos
            .values()
            .filter(|r| {
                r.owner.eq_ignore_ascii_case(&owner) && set.contains(&r.name.to_ascii_lowercase())
            })
            .map(|r| repo_json(ctx, r, None))
            .collect();
        out["repositories"] = json!(repos);
    }
    Ok(respond::json(StatusCode::CREATED, &out))
}

fn repo_route(ctx: &Ctx<'_>, owner: &str, repo: &str, tail: &[&str]) -> R<Resp> {
    let m = ctx.req.method.clone();
    let doc = doc_for(&m, tail);
    let token = token_auth(ctx, doc)?;
    let mut st = ctx.gh.state();
    let key = repo_key(owner, repo);
    if !st.repos.contains_key(&key) || !token.reaches(owner, repo) {
        return Err(not_found(doc));
    }
    // Permission the route needs.
    let need = |perm: &str, write: bool| -> R<()> {
        if token.can(perm, write) {
            Ok(())
        } else {
            Err(forbidden_integration(doc))
        }
    };
    let path = st.repos[&key].path.clone();
    let get = m == Method::GET;
    match (m.as_str(), tail) {
        ("GET", []) => {
            need("metadata", false)?;
            Ok(respond::json(
                StatusCode::OK,
                &repo_json(ctx, &st.repos[&key], Some(&token)),
            ))
        }
        ("GET", ["git", "ref", rest @ ..]) if !rest.is_empty() => {
            need("contents", false)?;
            let full = format!("refs/{}", rest.join("/"));
            ensure_not_empty(&path, doc)?;
            let refs = list_refs(&path);
            refs.iter()
                .find(|r| r.0 == full)
                .map(|r| respond::json(StatusCode::OK, &ref_json(ctx, owner, repo, r)))
                .ok_or_else(|| not_found(doc))
        }
        // The pre-2020 reference reads, no longer in the description but
        // still answered by GitHub: `git/refs` lists every ref;
        // `git/refs/{ref}` is that ref when the name is exact, else the refs
        // whose names start with it (404 when none do).
        ("GET", ["git", "refs", rest @ ..]) => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            let refs = list_refs(&path);
            let full = format!("refs/{}", rest.join("/"));
            if !rest.is_empty()
                && let Some(r) = refs.iter().find(|r| r.0 == full)
            {
                return Ok(respond::json(
                    StatusCode::OK,
                    &ref_json(ctx, owner, repo, r),
                ));
            }
            let list: Vec<Value> = refs
                .iter()
                .filter(|r| rest.is_empty() || r.0.starts_with(&full))
                .map(|r| ref_json(ctx, owner, repo, r))
                .collect();
            if list.is_empty() {
                return Err(not_found(doc));
            }
            Ok(paginate(ctx, list))
        }
        ("GET", ["git", "matching-refs", rest @ ..]) => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            let prefix = format!("refs/{}", rest.join("/"));
            let list: Vec<Value> = list_refs(&path)
                .iter()
                .filter(|r| r.0.starts_with(&prefix))
                .map(|r| ref_json(ctx, owner, repo, r))
                .collect();
            Ok(respond::json(StatusCode::OK, &json!(list)))
        }
        ("POST", ["git", "refs"]) => {
            need("contents", true)?;
            create_ref(ctx, &st, &key, &token, doc)
        }
        ("PATCH", ["git", "refs", rest @ ..]) if !rest.is_empty() => {
            need("contents", true)?;
            update_ref(ctx, &st, &key, &token, &rest.join("/"), doc)
        }
        ("DELETE", ["git", "refs", rest @ ..]) if !rest.is_empty() => {
            need("contents", true)?;
            delete_ref(&st.repos[&key], &rest.join("/"), doc)
        }
        // The git database: content-addressed, so the state lock is not
        // needed (and a 100 MB blob does not hold up other requests).
        ("POST", ["git", "blobs"]) => {
            need("contents", true)?;
            drop(st);
            ensure_not_empty(&path, doc)?;
            git_data::create_blob(ctx, &path, owner, repo, doc)
        }
        ("GET", ["git", "blobs", sha]) => {
            need("contents", false)?;
            drop(st);
            ensure_not_empty(&path, doc)?;
            git_data::get_blob(ctx, &path, owner, repo, sha, doc)
        }
        ("POST", ["git", "trees"]) => {
            need("contents", true)?;
            drop(st);
            ensure_not_empty(&path, doc)?;
            git_data::create_tree(ctx, &path, owner, repo, doc)
        }
        ("GET", ["git", "trees", rest @ ..]) if !rest.is_empty() => {
            need("contents", false)?;
            drop(st);
            ensure_not_empty(&path, doc)?;
            git_data::get_tree(ctx, &path, owner, repo, &rest.join("/"), doc)
        }
        ("POST", ["git", "commits"]) => {
            need("contents", true)?;
            drop(st);
            ensure_not_empty(&path, doc)?;
            git_data::create_commit(ctx, &path, owner, repo, &token, doc)
        }
        ("GET", ["actions", "runs", id]) => {
            need("actions", false)?;
            let r = &st.repos[&key];
            let run = id
                .parse::<u64>()
                .ok()
                .and_then(|id| r.runs.get(&id))
                .ok_or_else(|| not_found(doc))?;
            Ok(respond::json(
                StatusCode::OK,
                &runs::workflow_run_json(ctx, r, run),
            ))
        }
        ("POST", ["git", "tags"]) => {
            need("contents", true)?;
            create_tag(ctx, &path, owner, repo, &token, doc)
        }
        ("GET", ["git", "tags", sha]) => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            let obj_type = git(&path, &["cat-file", "-t", "--end-of-options", sha]).ok();
            if obj_type.as_deref().map(str::trim) != Some("tag") || !is_hex(sha) {
                return Err(not_found(doc));
            }
            Ok(respond::json(
                StatusCode::OK,
                &tag_json(ctx, &path, owner, repo, sha)?,
            ))
        }
        ("GET", ["git", "commits", sha]) => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            if !is_hex(sha) {
                return Err(not_found(doc));
            }
            let c = commit_info(&path, sha).ok_or_else(|| not_found(doc))?;
            Ok(respond::json(
                StatusCode::OK,
                &git_commit_json(ctx, owner, repo, &c),
            ))
        }
        ("GET", ["commits", rest @ ..]) if !rest.is_empty() => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            let rev = rest.join("/");
            let sha = resolve_commit(&path, &rev)
                .ok_or_else(|| unprocessable(&format!("No commit found for SHA: {rev}"), doc))?;
            let c = commit_info(&path, &sha).ok_or_else(|| not_found(doc))?;
            let base = c.parents.first().cloned();
            let files = diff_files(ctx, &path, owner, repo, base.as_deref(), &sha);
            let mut j = commit_json(ctx, owner, repo, &c);
            let (add, del) = files.iter().fold((0, 0), |(a, d), f| {
                (
                    a + f["additions"].as_u64().unwrap_or(0),
                    d + f["deletions"].as_u64().unwrap_or(0),
                )
            });
            j["stats"] = json!({"additions": add, "deletions": del, "total": add + del});
            j["files"] = json!(files);
            Ok(respond::json(StatusCode::OK, &j))
        }
        ("GET", ["compare", rest @ ..]) if !rest.is_empty() => {
            need("contents", false)?;
            ensure_not_empty(&path, doc)?;
            compare(ctx, &path, owner, repo, &rest.join("/"), doc)
        }
        ("GET", ["tags"]) => {
            need("contents", false)?;
            let mut list = Vec::new();
            let out = git(
                &path,
                &[
                    "for-each-ref",
                    "--sort=-creatordate",
                    "--format=%(refname:strip=2) %(objectname) %(*objectname)",
                    "refs/tags",
                ],
            )
            .unwrap_or_default();
            for line in out.lines() {
                let parts: Vec<&str> = line.split(' ').collect();
                let (name, obj, peeled) = (
                    parts[0],
                    parts.get(1).copied().unwrap_or(""),
                    parts.get(2).copied().unwrap_or(""),
                );
                let sha = if peeled.is_empty() { obj } else { peeled };
                list.push(json!({
                    "name": name,
                    "commit": {"sha": sha, "url": format!("{}/repos/{owner}/{repo}/commits/{sha}", ctx.api)},
                    "zipball_url": format!("{}/repos/{owner}/{repo}/zipball/refs/tags/{name}", ctx.api),
                    "tarball_url": format!("{}/repos/{owner}/{repo}/tarball/refs/tags/{name}", ctx.api),
                    "node_id": node_id("Ref", fnv(name)),
                }));
            }
            Ok(paginate(ctx, list))
        }
        ("GET", ["branches"]) => {
            need("contents", false)?;
            let r = &st.repos[&key];
            let list: Vec<Value> = list_refs(&path)
                .iter()
                .filter_map(|x| x.0.strip_prefix("refs/heads/").map(|b| (b.to_owned(), x.1.clone())))
                .map(|(b, sha)| json!({
                    "name": b,
                    "commit": {"sha": sha, "url": format!("{}/repos/{owner}/{repo}/commits/{sha}", ctx.api)},
                    "protected": r.protected.contains(&b),
                }))
                .collect();
            Ok(paginate(ctx, list))
        }
        ("GET", ["branches", rest @ ..]) if !rest.is_empty() => {
            need("contents", false)?;
            let b = rest.join("/");
            let r = &st.repos[&key];
            let sha = list_refs(&path)
                .into_iter()
                .find(|x| x.0 == format!("refs/heads/{b}"))
                .map(|x| x.1)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "Branch not found", doc))?;
            let c = commit_info(&path, &sha).ok_or_else(|| not_found(doc))?;
            let protected = r.protected.contains(&b);
            let purl = format!("{}/repos/{owner}/{repo}/branches/{b}/protection", ctx.api);
            Ok(respond::json(
                StatusCode::OK,
                &json!({
                    "name": b,
                    "commit": commit_json(ctx, owner, repo, &c),
                    "_links": {"self": format!("{}/repos/{owner}/{repo}/branches/{b}", ctx.api),
                               "html": format!("{}/{owner}/{repo}/tree/{b}", ctx.web)},
                    "protected": protected,
                    "protection": {"enabled": protected, "required_status_checks": {
                        "enforcement_level": if protected { "non_admins" } else { "off" },
                        "contexts": [], "checks": []}},
                    "protection_url": purl,
                }),
            ))
        }
        ("POST", ["pulls"]) => {
            need("pull_requests", true)?;
            create_pull(ctx, &mut st, &key, &token, doc)
        }
        ("GET", ["pulls"]) => {
            need("pull_requests", false)?;
            let r = &st.repos[&key];
            let state = ctx.req.query_param("state").unwrap_or("open");
            let head = ctx.req.query_param("head");
            let base = ctx.req.query_param("base");
            let mut list: Vec<&Item> = r
                .items
                .iter()
                .filter(|i| i.pull.is_some())
                .filter(|i| state == "all" || i.state == state)
                .filter(|i| {
                    head.is_none_or(|h| {
                        let p = i.pull.as_ref().map(|p| p.head_ref.as_str()).unwrap_or("");
                        match h.split_once(':') {
                            Some((o, b)) => o.eq_ignore_ascii_case(&r.owner) && b == p,
                            None => h.eq_ignore_ascii_case(&r.owner),
                        }
                    })
                })
                .filter(|i| base.is_none_or(|b| i.pull.as_ref().is_some_and(|p| p.base_ref == b)))
                .collect();
            sort_items(ctx, &mut list);
            let out: Vec<Value> = list.iter().map(|i| pull_json(ctx, r, i, false)).collect();
            Ok(paginate(ctx, out))
        }
        ("GET", ["pulls", n]) => {
            need("pull_requests", false)?;
            let r = &st.repos[&key];
            let item = find_item(r, n)
                .filter(|i| i.pull.is_some())
                .ok_or_else(|| not_found(doc))?;
            if let Some(format) = diff_media_type(ctx.req) {
                return pull_diff(r, item, format, doc);
            }
            Ok(respond::json(
                StatusCode::OK,
                &pull_json(ctx, r, item, true),
            ))
        }
        // Update a pull request: title, body, state, and base (a branch
        // that exists; 422 otherwise), as GitHub's REST API takes them.
        ("PATCH", ["pulls", n]) => {
            need("pull_requests", true)?;
            let body = body_json(ctx.req, doc)?;
            let r = &st.repos[&key];
            let num = find_item(r, n)
                .filter(|i| i.pull.is_some())
                .map(|i| i.number)
                .ok_or_else(|| not_found(doc))?;
            let base = body.get("base").and_then(Value::as_str).map(str::to_owned);
            if let Some(b) = &base
                && branch_sha(&r.path, b).is_none()
            {
                return Err(invalid(
                    doc,
                    json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
                ));
            }
            let state = body.get("state").and_then(Value::as_str);
            if let Some(x) = state
                && !matches!(x, "open" | "closed")
            {
                return Err(invalid(
                    doc,
                    json!([{"resource": "PullRequest", "field": "state", "code": "invalid", "value": x}]),
                ));
            }
            let r = st.repos.get_mut(&key).expect("repo checked");
            let item = r
                .items
                .iter_mut()
                .find(|i| i.number == num)
                .expect("exists");
            let now = Utc::now();
            set_title_and_body(item, &body);
            if let Some(x) = state {
                item.closed_at = (x == "closed").then_some(now);
                item.state = x.to_owned();
            }
            if let (Some(b), Some(p)) = (base, item.pull.as_mut()) {
                p.base_ref = b;
            }
            item.updated_at = now;
            let r = &st.repos[&key];
            let item = r.items.iter().find(|i| i.number == num).expect("exists");
            Ok(respond::json(
                StatusCode::OK,
                &pull_json(ctx, r, item, true),
            ))
        }
        ("POST", ["issues"]) => {
            need("issues", true)?;
            create_issue(ctx, &mut st, &key, &token, doc)
        }
        ("GET", ["issues"]) => {
            need("issues", false)?;
            let r = &st.repos[&key];
            let state = ctx.req.query_param("state").unwrap_or("open");
            let labels: Vec<&str> = ctx
                .req
                .query_param("labels")
                .map(|l| {
                    l.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let assignee = ctx.req.query_param("assignee");
            let mut list: Vec<&Item> = r
                .items
                .iter()
                .filter(|i| state == "all" || i.state == state)
                .filter(|i| {
                    labels
                        .iter()
                        .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
                })
                .filter(|i| match assignee {
                    None | Some("*") => assignee.is_none() || !i.assignees.is_empty(),
                    Some("none") => i.assignees.is_empty(),
                    Some(a) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
                })
                .collect();
            sort_items(ctx, &mut list);
            let out: Vec<Value> = list.iter().map(|i| issue_json(ctx, r, i)).collect();
            Ok(paginate(ctx, out))
        }
        (_, ["issues", n, sub @ ..]) => {
            let is_pr = find_item(&st.repos[&key], n).is_some_and(|i| i.pull.is_some());
            let write = !get;
            if !(token.can("issues", write) || (is_pr && token.can("pull_requests", write))) {
                return Err(forbidden_integration(doc));
            }
            issue_route(ctx, &mut st, &key, &token, n, sub, doc)
        }
        ("POST", ["deployments"]) => {
            need("deployments", true)?;
            create_deployment(ctx, &mut st, &key, &token, doc)
        }
        ("GET", ["deployments"]) => {
            need("deployments", false)?;
            let r = &st.repos[&key];
            let q = |k: &str| ctx.req.query_param(k);
            let mut list: Vec<&Deployment> = r
                .deployments
                .iter()
                .filter(|d| q("sha").is_none_or(|v| d.sha == v))
                .filter(|d| q("ref").is_none_or(|v| d.git_ref == v))
                .filter(|d| q("task").is_none_or(|v| d.task == v))
                .filter(|d| q("environment").is_none_or(|v| d.environment == v))
                .collect();
            list.reverse();
            let out: Vec<Value> = list.iter().map(|d| deployment_json(ctx, r, d)).collect();
            Ok(paginate(ctx, out))
        }
        ("GET", ["deployments", id]) => {
            need("deployments", false)?;
            let r = &st.repos[&key];
            let d = r
                .deployments
                .iter()
                .find(|d| d.id.to_string() == *id)
                .ok_or_else(|| not_found(doc))?;
            Ok(respond::json(StatusCode::OK, &deployment_json(ctx, r, d)))
        }
        ("POST", ["deployments", id, "statuses"]) => {
            need("deployments", true)?;
            create_deployment_status(ctx, &mut st, &key, &token, id, doc)
        }
        ("GET", ["deployments", id, "statuses"]) => {
            need("deployments", false)?;
            let r = &st.repos[&key];
            let d = r
                .deployments
                .iter()
                .find(|d| d.id.to_string() == *id)
                .ok_or_else(|| not_found(doc))?;
            let out: Vec<Value> = d
                .statuses
                .iter()
                .rev()
                .map(|s| deployment_status_json(ctx, r, d, s))
                .collect();
            Ok(paginate(ctx, out))
        }
        _ => Err(not_found(doc)),
    }
}

fn doc_for(m: &Method, tail: &[&str]) -> &'static str {
    match (m.as_str(), tail.first().copied(), tail.get(1).copied()) {
        ("GET", None, _) => "https://docs.github.com/rest/repos/repos#get-a-repository",
        ("GET", Some("git"), Some("ref" | "refs")) => {
            "https://docs.github.com/rest/git/refs#get-a-reference"
        }
        (_, Some("git"), Some("matching-refs")) => {
            "https://docs.github.com/rest/git/refs#list-matching-references"
        }
        ("POST", Some("git"), Some("refs")) => {
            "https://docs.github.com/rest/git/refs#create-a-reference"
        }
        ("PATCH", Some("git"), Some("refs")) => {
            "https://docs.github.com/rest/git/refs#update-a-reference"
        }
        ("DELETE", Some("git"), Some("refs")) => {
            "https://docs.github.com/rest/git/refs#delete-a-reference"
        }
        ("POST", Some("git"), Some("tags")) => {
            "https://docs.github.com/rest/git/tags#create-a-tag-object"
        }
        ("GET", Some("git"), Some("tags")) => "https://docs.github.com/rest/git/tags#get-a-tag",
        ("POST", Some("git"), Some("commits")) => {
            "https://docs.github.com/rest/git/commits#create-a-commit"
        }
        (_, Some("git"), Some("commits")) => {
            "https://docs.github.com/rest/git/commits#get-a-commit-object"
        }
        ("POST", Some("git"), Some("blobs")) => {
            "https://docs.github.com/rest/git/blobs#create-a-blob"
        }
        (_, Some("git"), Some("blobs")) => "https://docs.github.com/rest/git/blobs#get-a-blob",
        ("POST", Some("git"), Some("trees")) => {
            "https://docs.github.com/rest/git/trees#create-a-tree"
        }
        (_, Some("git"), Some("trees")) => "https://docs.github.com/rest/git/trees#get-a-tree",
        (_, Some("actions"), Some("runs")) => {
            "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run"
        }
        (_, Some("commits"), _) => "https://docs.github.com/rest/commits/commits#get-a-commit",
        (_, Some("compare"), _) => {
            "https://docs.github.com/rest/commits/commits#compare-two-commits"
        }
        (_, Some("tags"), _) => "https://docs.github.com/rest/repos/repos#list-repository-tags",
        (_, Some("branches"), _) => "https://docs.github.com/rest/branches/branches#get-a-branch",
        ("POST", Some("pulls"), _) => {
            "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
        }
        (_, Some("pulls"), None) => "https://docs.github.com/rest/pulls/pulls#list-pull-requests",
        ("PATCH", Some("pulls"), _) => {
            "https://docs.github.com/rest/pulls/pulls#update-a-pull-request"
        }
        (_, Some("pulls"), _) => "https://docs.github.com/rest/pulls/pulls#get-a-pull-request",
        (_, Some("issues"), _) => match (m.as_str(), tail.get(2).copied()) {
            ("POST", None) if tail.len() == 1 => {
                "https://docs.github.com/rest/issues/issues#create-an-issue"
            }
            ("GET", None) if tail.len() == 1 => {
                "https://docs.github.com/rest/issues/issues#list-repository-issues"
            }
            ("PATCH", None) => "https://docs.github.com/rest/issues/issues#update-an-issue",
            (_, Some("comments")) => {
                "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
            }
            (_, Some("labels")) => {
                "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue"
            }
            (_, Some("assignees")) => {
                "https://docs.github.com/rest/issues/assignees#add-assignees-to-an-issue"
            }
            _ => "https://docs.github.com/rest/issues/issues#get-an-issue",
        },
        (_, Some("deployments"), _) if tail.len() >= 3 => {
            "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status"
        }
        (_, Some("deployments"), _) => {
            "https://docs.github.com/rest/deployments/deployments#create-a-deployment"
        }
        _ => DOCS,
    }
}

fn paginate(ctx: &Ctx<'_>, list: Vec<Value>) -> Resp {
    let per_page = ctx
        .req
        .query_param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = ctx
        .req
        .query_param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = list.len();
    let slice: Vec<Value> = list
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut r = respond::json(StatusCode::OK, &json!(slice));
    let last = total.div_ceil(per_page).max(1);
    if page < last {
        let link_for = |p: usize| {
            let mut q: Vec<(String, String)> = ctx
                .req
                .query
                .iter()
                .filter(|(k, _)| k != "page")
                .cloned()
                .collect();
            q.push(("page".into(), p.to_string()));
            let qs = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish();
            format!("{}{}?{qs}", ctx.api, ctx.req.path)
        };
        let link = format!(
            "<{}>; rel=\"next\", <{}>; rel=\"last\"",
            link_for(page + 1),
            link_for(last)
        );
        respond::set_header(&mut r, "link", &link);
    }
    r
}

// ---------------------------------------------------------------- git reads

fn is_hex(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) % 90_000_000
        + 10_000_000
}

fn ensure_not_empty(path: &Path, doc: &str) -> R<()> {
    if list_refs(path).is_empty() {
        Err(empty_repo(doc))
    } else {
        Ok(())
    }
}

/// `(refname, object sha, object type)` for every ref.
pub(super) fn list_refs(path: &Path) -> Vec<(String, String, String)> {
    git(
        path,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(objecttype)",
        ],
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| {
        let mut p = l.split(' ');
        Some((
            p.next()?.to_owned(),
            p.next()?.to_owned(),
            p.next()?.to_owned(),
        ))
    })
    .collect()
}

fn resolve_commit(path: &Path, rev: &str) -> Option<String> {
    if rev.is_empty() || rev.starts_with('-') || rev.contains("..") {
        return None;
    }
    git(
        path,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .ok()
    .map(|s| s.trim().to_owned())
    .filter(|s| !s.is_empty())
}

fn object_type(path: &Path, sha: &str) -> Option<String> {
    if !is_hex(sha) {
        return None;
    }
    git(path, &["cat-file", "-t", sha])
        .ok()
        .map(|s| s.trim().to_owned())
}

#[derive(Clone)]
pub(super) struct Person {
    pub name: String,
    pub email: String,
    pub date: String,
}

pub(super) struct CommitInfo {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Person,
    pub committer: Person,
    pub message: String,
}

fn parse_person(s: &str) -> Person {
    // "Name <email> 1700000000 +0100"
    let (name, rest) = s.split_once(" <").unwrap_or((s, ""));
    let (email, rest) = rest.split_once("> ").unwrap_or((rest, ""));
    let ts = rest
        .split(' ')
        .next()
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(0);
    let date = Utc
        .timestamp_opt(ts, 0)
        .single()
        .map(iso)
        .unwrap_or_default();
    Person {
        name: name.to_owned(),
        email: email.to_owned(),
        date,
    }
}

pub(super) fn commit_info(path: &Path, sha: &str) -> Option<CommitInfo> {
    if object_type(path, sha).as_deref() != Some("commit") {
        return None;
    }
    let full = git(path, &["rev-parse", "--verify", sha])
        .ok()?
        .trim()
        .to_owned();
    let raw = git(path, &["cat-file", "commit", &full]).ok()?;
    let (head, message) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut info = CommitInfo {
        sha: full,
        tree: String::new(),
        parents: Vec::new(),
        author: parse_person(""),
        committer: parse_person(""),
        message: message.to_owned(),
    };
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("tree ") {
            info.tree = v.to_owned();
        } else if let Some(v) = line.strip_prefix("parent ") {
            info.parents.push(v.to_owned());
        } else if let Some(v) = line.strip_prefix("author ") {
            info.author = parse_person(v);
        } else if let Some(v) = line.strip_prefix("committer ") {
            info.committer = parse_person(v);
        }
    }
    Some(info)
}

fn verification() -> Value {
    json!({"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null})
}

fn person_json(p: &Person) -> Value {
    json!({"name": p.name, "email": p.email, "date": p.date})
}

fn git_commit_json(ctx: &Ctx<'_>, owner: &str, repo: &str, c: &CommitInfo) -> Value {
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    json!({
        "sha": c.sha,
        "node_id": node_id("Commit", fnv(&c.sha)),
        "url": format!("{api}/git/commits/{}", c.sha),
        "html_url": format!("{}/{owner}/{repo}/commit/{}", ctx.web, c.sha),
        "author": person_json(&c.author),
        "committer": person_json(&c.committer),
        "tree": {"sha": c.tree, "url": format!("{api}/git/trees/{}", c.tree)},
        "message": c.message,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p, "url": format!("{api}/git/commits/{p}"),
            "html_url": format!("{}/{owner}/{repo}/commit/{p}", ctx.web)})).collect::<Vec<_>>(),
        "verification": verification(),
    })
}

/// The `commit` schema (REST commits API), without files/stats.
fn commit_json(ctx: &Ctx<'_>, owner: &str, repo: &str, c: &CommitInfo) -> Value {
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    json!({
        "sha": c.sha,
        "node_id": node_id("Commit", fnv(&c.sha)),
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("{}/{owner}/{repo}/commit/{}", ctx.web, c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "commit": {
            "url": format!("{api}/git/commits/{}", c.sha),
            "author": person_json(&c.author),
            "committer": person_json(&c.committer),
            "message": c.message.trim_end_matches('\n'),
            "comment_count": 0,
            "tree": {"sha": c.tree, "url": format!("{api}/git/trees/{}", c.tree)},
            "verification": verification(),
        },
        "author": null,
        "committer": null,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p, "url": format!("{api}/commits/{p}"),
            "html_url": format!("{}/{owner}/{repo}/commit/{p}", ctx.web)})).collect::<Vec<_>>(),
    })
}

/// `diff-entry` objects from `base` (or the empty tree) to `head`.
pub(super) fn diff_files(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    base: Option<&str>,
    head: &str,
) -> Vec<Value> {
    let empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let base = base.unwrap_or(empty_tree);
    let raw = git(
        path,
        &["diff", "--raw", "-M", "--no-abbrev", "-z", base, head],
    )
    .unwrap_or_default();
    let numstat = git(path, &["diff", "--numstat", "-M", "-z", base, head]).unwrap_or_default();
    // numstat -z: "add\tdel\tpath\0" or "add\tdel\t\0old\0new\0" for renames.
    let mut stats: Vec<(u64, u64)> = Vec::new();
    let mut it = numstat.split('\0');
    while let Some(rec) = it.next() {
        if rec.is_empty() {
            continue;
        }
        let mut p = rec.splitn(3, '\t');
        let a = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let d = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        if p.next() == Some("") {
            it.next();
            it.next();
        }
        stats.push((a, d));
    }
    let mut files = Vec::new();
    let mut parts = raw.split('\0');
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    while let Some(meta) = parts.next() {
        if !meta.starts_with(':') {
            continue;
        }
        // ":old_mode new_mode old_sha new_sha STATUS"
        let fields: Vec<&str> = meta[1..].split(' ').collect();
        if fields.len() < 5 {
            break;
        }
        let new_sha = fields[3];
        let old_sha = fields[2];
        let status_letter = fields[4].chars().next().unwrap_or('M');
        let first = parts.next().unwrap_or("").to_owned();
        let (filename, previous) = if matches!(status_letter, 'R' | 'C') {
            (parts.next().unwrap_or("").to_owned(), Some(first))
        } else {
            (first, None)
        };
        let status = match status_letter {
            'A' => "added",
            'D' => "removed",
            'R' => "renamed",
            'C' => "copied",
            'T' => "changed",
            _ => "modified",
        };
        let (a, d) = stats.get(files.len()).copied().unwrap_or((0, 0));
        let sha = if status == "removed" {
            old_sha
        } else {
            new_sha
        };
        let enc =
            percent_encoding::utf8_percent_encode(&filename, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/");
        let mut f = json!({
            "sha": sha,
            "filename": filename,
            "status": status,
            "additions": a,
            "deletions": d,
            "changes": a + d,
            "blob_url": format!("{}/{owner}/{repo}/blob/{head}/{enc}", ctx.web),
            "raw_url": format!("{}/{owner}/{repo}/raw/{head}/{enc}", ctx.web),
            "contents_url": format!("{api}/contents/{enc}?ref={head}"),
        });
        if let Some(p) = previous {
            f["previous_filename"] = json!(p);
        }
        files.push(f);
    }
    files
}

pub(super) fn count(path: &Path, range: &str) -> u64 {
    git(path, &["rev-list", "--count", range])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn compare(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    basehead: &str,
    doc: &str,
) -> R<Resp> {
    let (b, h) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
        .ok_or_else(|| not_found(doc))?;
    // `owner:branch` (same repository only in the sandbox).
    let strip = |x: &str| -> String {
        match x.split_once(':') {
            Some((o, br)) if o.eq_ignore_ascii_case(owner) => br.to_owned(),
            _ => x.to_owned(),
        }
    };
    let (b, h) = (strip(b), strip(h));
    let base = resolve_commit(path, &b).ok_or_else(|| not_found(doc))?;
    let head = resolve_commit(path, &h).ok_or_else(|| not_found(doc))?;
    let mb = git(path, &["merge-base", &base, &head])
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                &format!("No common ancestor between {b} and {h}."),
                doc,
            )
        })?;
    let ahead = count(path, &format!("{base}..{head}"));
    let behind = count(path, &format!("{head}..{base}"));
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let list =
        git(path, &["rev-list", "--reverse", &format!("{base}..{head}")]).unwrap_or_default();
    let shas: Vec<&str> = list.lines().collect();
    let skip = shas.len().saturating_sub(250);
    let commits: Vec<Value> = shas[skip..]
        .iter()
        .filter_map(|s| commit_info(path, s))
        .map(|c| commit_json(ctx, owner, repo, &c))
        .collect();
    let files = diff_files(ctx, path, owner, repo, Some(&mb), &head);
    let base_c = commit_info(path, &base).ok_or_else(|| not_found(doc))?;
    let mb_c = commit_info(path, &mb).ok_or_else(|| not_found(doc))?;
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    let web = format!("{}/{owner}/{repo}", ctx.web);
    Ok(respond::json(
        StatusCode::OK,
        &json!({
            "url": format!("{api}/compare/{b}...{h}"),
            "html_url": format!("{web}/compare/{b}...{h}"),
            "permalink_url": format!("{web}/compare/{owner}:{base}...{owner}:{head}"),
            "diff_url": format!("{web}/compare/{b}...{h}.diff"),
            "patch_url": format!("{web}/compare/{b}...{h}.patch"),
            "base_commit": commit_json(ctx, owner, repo, &base_c),
            "merge_base_commit": commit_json(ctx, owner, repo, &mb_c),
            "status": status,
            "ahead_by": ahead,
            "behind_by": behind,
            "total_commits": ahead,
            "commits": commits,
            "files": files,
        }),
    ))
}

// ---------------------------------------------------------------- refs, tags

fn ref_json(ctx: &Ctx<'_>, owner: &str, repo: &str, r: &(String, String, String)) -> Value {
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    let kind = if r.2 == "tag" { "tags" } else { "commits" };
    json!({
        "ref": r.0,
        "node_id": node_id("Ref", fnv(&r.0)),
        "url": format!("{api}/git/{}", r.0),
        "object": {"type": r.2, "sha": r.1, "url": format!("{api}/git/{kind}/{}", r.1)},
    })
}

/// Files under `.github/workflows/` that moving a ref from `old` to `new`
/// creates or changes (what the `workflows` permission guards).
fn workflow_change(
    path: &Path,
    old: Option<&str>,
    new: &str,
    default_branch: Option<&str>,
) -> Option<String> {
    let mut args = vec![
        "log",
        "--format=",
        "--name-only",
        "--no-renames",
        "-m",
        "--root",
        new,
        "--not",
        "--all",
        "--",
        ".github/workflows/",
    ];
    let first = |out: String| out.lines().find(|l| !l.is_empty()).map(str::to_owned);
    if let Some(f) = git(path, &args).ok().and_then(first) {
        return Some(f);
    }
    // A ref the App moves (or, for a new ref, what it adds over the
    // default branch) changes workflows when the trees differ there.
    let range = match old {
        Some(old) => format!("{old}..{new}"),
        None => format!(
            "{default}...{new}",
            default = default_branch.unwrap_or("HEAD")
        ),
    };
    args = vec![
        "diff",
        "--name-only",
        "--no-renames",
        &range,
        "--",
        ".github/workflows/",
    ];
    git(path, &args).ok().and_then(first)
}

fn workflow_refusal(f: &str, doc: &str) -> Resp {
    unprocessable(
        &format!(
            "refusing to allow a GitHub App to create or update workflow `{f}` without `workflows` permission"
        ),
        doc,
    )
}

fn already_exists(doc: &str) -> Resp {
    respond::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"message": "Reference already exists", "documentation_url": doc, "status": "422",
                "errors": [{"resource": "Reference", "field": "ref", "code": "already_exists"}]}),
    )
}

/// How often a ref update or deletion re-reads the ref after losing a
/// compare-and-set to a concurrent writer (a push) before giving up.
const CAS_ATTEMPTS: usize = 5;

fn delete_ref(r: &Repo, rest: &str, doc: &str) -> R<Resp> {
    let full = format!("refs/{rest}");
    if full == format!("refs/heads/{}", r.default_branch) {
        if !list_refs(&r.path).iter().any(|x| x.0 == full) {
            return Err(unprocessable("Reference does not exist", doc));
        }
        return Err(unprocessable("Cannot delete the default branch", doc));
    }
    if let Some(b) = full.strip_prefix("refs/heads/")
        && r.protected.contains(b)
        && list_refs(&r.path).iter().any(|x| x.0 == full)
    {
        return Err(unprocessable("Cannot delete a protected branch", doc));
    }
    for _ in 0..CAS_ATTEMPTS {
        let Some(current) = list_refs(&r.path).into_iter().find(|x| x.0 == full) else {
            return Err(unprocessable("Reference does not exist", doc));
        };
        // Compare-and-delete: only the value just read is deleted.
        if git(&r.path, &["update-ref", "-d", &full, &current.1]).is_ok() {
            return Ok(respond::empty(StatusCode::NO_CONTENT));
        }
    }
    Err(unprocessable("Reference cannot be deleted", doc))
}

fn create_ref(ctx: &Ctx<'_>, st: &State, key: &str, token: &Token, doc: &str) -> R<Resp> {
    let r = &st.repos[key];
    let body = body_json(ctx.req, doc)?;
    let Some(name) = body.get("ref").and_then(Value::as_str) else {
        return Err(invalid(
            doc,
            json!([{"resource": "Reference", "field": "ref", "code": "missing_field"}]),
        ));
    };
    let Some(sha) = body.get("sha").and_then(Value::as_str) else {
        return Err(invalid(
            doc,
            json!([{"resource": "Reference", "field": "sha", "code": "missing_field"}]),
        ));
    };
    if !name.starts_with("refs/") || name.matches('/').count() < 2 {
        return Err(unprocessable(
            "Reference name must start with 'refs/' and have at least two slashes.",
            doc,
        ));
    }
    if git(&r.path, &["check-ref-format", name]).is_err() {
        return Err(unprocessable(
            &format!("{name} is not a valid ref name."),
            doc,
        ));
    }
    if list_refs(&r.path).is_empty() {
        return Err(empty_repo(doc));
    }
    let Some(kind) = object_type(&r.path, sha) else {
        return Err(unprocessable("Object does not exist", doc));
    };
    let full_sha =
        git(&r.path, &["rev-parse", "--verify", sha]).map_err(|e| unprocessable(&e, doc))?;
    let full_sha = full_sha.trim();
    if list_refs(&r.path).iter().any(|x| x.0 == name) {
        return Err(already_exists(doc));
    }
    if !token.can("workflows", true)
        && kind == "commit"
        && let Some(f) = workflow_change(&r.path, None, full_sha, Some(&r.default_branch))
    {
        return Err(workflow_refusal(&f, doc));
    }
    // Create-only compare-and-set: of concurrent creations one wins.
    git(&r.path, &["update-ref", name, full_sha, Z40]).map_err(|_| already_exists(doc))?;
    let entry = (name.to_owned(), full_sha.to_owned(), kind);
    let mut resp = respond::json(
        StatusCode::CREATED,
        &ref_json(ctx, &r.owner, &r.name, &entry),
    );
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{}/{}/git/{name}", ctx.api, r.owner, r.name),
    );
    Ok(resp)
}

fn update_ref(
    ctx: &Ctx<'_>,
    st: &State,
    key: &str,
    token: &Token,
    rest: &str,
    doc: &str,
) -> R<Resp> {
    let r = &st.repos[key];
    let body = body_json(ctx.req, doc)?;
    let Some(sha) = body.get("sha").and_then(Value::as_str) else {
        return Err(invalid(
            doc,
            json!([{"resource": "Reference", "field": "sha", "code": "missing_field"}]),
        ));
    };
    let force = body.get("force").and_then(Value::as_bool).unwrap_or(false);
    let full = format!("refs/{rest}");
    if !list_refs(&r.path).iter().any(|x| x.0 == full) {
        return Err(unprocessable("Reference does not exist", doc));
    }
    let Some(kind) = object_type(&r.path, sha) else {
        return Err(unprocessable("Object does not exist", doc));
    };
    let new = git(&r.path, &["rev-parse", "--verify", sha]).map_err(|e| unprocessable(&e, doc))?;
    let new = new.trim().to_owned();
    if let Some(b) = full.strip_prefix("refs/heads/")
        && r.protected.contains(b)
    {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Protected branch update failed for {full}."),
            doc,
        ));
    }
    // Compare-and-set against the value the checks saw: when a concurrent
    // writer (a push) moves the ref in between, `update-ref` refuses and
    // the checks run again on the new value (bounded).
    for _ in 0..CAS_ATTEMPTS {
        let Some(current) = list_refs(&r.path).into_iter().find(|x| x.0 == full) else {
            return Err(unprocessable("Reference does not exist", doc));
        };
        if !force {
            let ff = git(&r.path, &["merge-base", "--is-ancestor", &current.1, &new]).is_ok();
            if !ff {
                return Err(unprocessable("Update is not a fast forward", doc));
            }
        }
        if !token.can("workflows", true)
            && kind == "commit"
            && let Some(f) = workflow_change(&r.path, Some(&current.1), &new, None)
        {
            return Err(workflow_refusal(&f, doc));
        }
        if git(&r.path, &["update-ref", &full, &new, &current.1]).is_ok() {
            let entry = (full, new, kind);
            return Ok(respond::json(
                StatusCode::OK,
                &ref_json(ctx, &r.owner, &r.name, &entry),
            ));
        }
    }
    Err(unprocessable("Reference cannot be updated", doc))
}

fn create_tag(
    ctx: &Ctx<'_>,
    path: &Path,
    owner: &str,
    repo: &str,
    token: &Token,
    doc: &str,
) -> R<Resp> {
    let body = body_json(ctx.req, doc)?;
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let mut missing = Vec::new();
    for f in ["tag", "message", "object", "type"] {
        if s(f).is_none() {
            missing.push(json!({"resource": "Tag", "field": f, "code": "missing_field"}));
        }
    }
    if !missing.is_empty() {
        return Err(invalid(doc, json!(missing)));
    }
    let (tag, message, object, kind) = (
        s("tag").unwrap_or(""),
        s("message").unwrap_or(""),
        s("object").unwrap_or(""),
        s("type").unwrap_or(""),
    );
    if !matches!(kind, "commit" | "tree" | "blob") {
        return Err(invalid(
            doc,
            json!([{"resource": "Tag", "field": "type", "code": "invalid"}]),
        ));
    }
    if git(path, &["check-ref-format", &format!("refs/tags/{tag}")]).is_err() {
        return Err(invalid(
            doc,
            json!([{"resource": "Tag", "field": "tag", "code": "invalid"}]),
        ));
    }
    if object_type(path, object).as_deref() != Some(kind) {
        return Err(unprocessable("Object does not exist", doc));
    }
    let object =
        git(path, &["rev-parse", "--verify", object]).map_err(|e| unprocessable(&e, doc))?;
    let object = object.trim();
    let tagger = body.get("tagger");
    let default_name = token.actor.login.clone();
    let name = tagger
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(&default_name);
    let email = tagger
        .and_then(|t| t.get("email"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "{}+{}@users.noreply.github.test",
                token.actor.id, token.actor.login
            )
        });
    let ts = tagger
        .and_then(|t| t.get("date"))
        .and_then(Value::as_str)
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.timestamp())
        .unwrap_or_else(|| Utc::now().timestamp());
    let mut msg = message.to_owned();
    if !msg.ends_with('\n') {
        msg.push('\n');
    }
    let text = format!(
        "object {object}\ntype {kind}\ntag {tag}\ntagger {name} <{email}> {ts} +0000\n\n{msg}"
    );
    let sha = git_stdin(path, &["mktag"], text.as_bytes())
        .map_err(|e| unprocessable(&format!("Invalid tag: {e}"), doc))?;
    let v = tag_json(ctx, path, owner, repo, sha.trim())?;
    Ok(respond::json(StatusCode::CREATED, &v))
}

fn tag_json(ctx: &Ctx<'_>, path: &Path, owner: &str, repo: &str, sha: &str) -> R<Value> {
    let full = git(path, &["rev-parse", "--verify", sha]).map_err(|_| not_found(DOCS))?;
    let full = full.trim();
    let raw = git(path, &["cat-file", "tag", full]).map_err(|_| not_found(DOCS))?;
    let (head, message) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let (mut object, mut kind, mut tag, mut tagger) = (
        String::new(),
        String::new(),
        String::new(),
        parse_person(""),
    );
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("object ") {
            object = v.to_owned();
        } else if let Some(v) = line.strip_prefix("type ") {
            kind = v.to_owned();
        } else if let Some(v) = line.strip_prefix("tag ") {
            tag = v.to_owned();
        } else if let Some(v) = line.strip_prefix("tagger ") {
            tagger = parse_person(v);
        }
    }
    let api = format!("{}/repos/{owner}/{repo}", ctx.api);
    let obj_kind = match kind.as_str() {
        "commit" => "commits",
        "tree" => "trees",
        "blob" => "blobs",
        _ => "tags",
    };
    Ok(json!({
        "node_id": node_id("Tag", fnv(full)),
        "sha": full,
        "url": format!("{api}/git/tags/{full}"),
        "tag": tag,
        "message": message,
        "tagger": person_json(&tagger),
        "object": {"sha": object, "type": kind, "url": format!("{api}/git/{obj_kind}/{object}")},
        "verification": verification(),
    }))
}

// ---------------------------------------------------------------- users, repos, app

fn user_json(ctx: &Ctx<'_>, login: &str, id: u64, kind: &str) -> Value {
    // `[bot]` logins are percent-encoded in URLs, as on github.com.
    let enc = login.replace('[', "%5B").replace(']', "%5D");
    let api = format!("{}/users/{enc}", ctx.api);
    json!({
        "login": login, "id": id, "node_id": node_id("User", id),
        "avatar_url": format!("{}/avatars/u/{id}", ctx.web),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{enc}", ctx.web),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false,
    })
}

fn actor_json(ctx: &Ctx<'_>, a: &Actor) -> Value {
    user_json(ctx, &a.login, a.id, if a.bot { "Bot" } else { "User" })
}

fn owner_json(ctx: &Ctx<'_>, owner: &str) -> Value {
    user_json(ctx, owner, fnv(owner), "Organization")
}

fn repo_json(ctx: &Ctx<'_>, r: &Repo, token: Option<&Token>) -> Value {
    let (o, n) = (&r.owner, &r.name);
    let api = format!("{}/repos/{o}/{n}", ctx.api);
    let web = format!("{}/{o}/{n}", ctx.web);
    let open = r.items.iter().filter(|i| i.state == "open").count();
    let created = iso(r.created_at);
    let pushed = git(&r.path, &["log", "-1", "--all", "--format=%ct"])
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .map(iso)
        .unwrap_or_else(|| created.clone());
    let url_fields: Vec<(&str, String)> = vec![
        ("archive_url", format!("{api}/{{archive_format}}{{/ref}}")),
        ("assignees_url", format!("{api}/assignees{{/user}}")),
        ("blobs_url", format!("{api}/git/blobs{{/sha}}")),
        ("branches_url", format!("{api}/branches{{/branch}}")),
        (
            "collaborators_url",
            format!("{api}/collaborators{{/collaborator}}"),
        ),
        ("comments_url", format!("{api}/comments{{/number}}")),
        ("commits_url", format!("{api}/commits{{/sha}}")),
        ("compare_url", format!("{api}/compare/{{base}}...{{head}}")),
        ("contents_url", format!("{api}/contents/{{+path}}")),
        ("contributors_url", format!("{api}/contributors")),
        ("deployments_url", format!("{api}/deployments")),
        ("downloads_url", format!("{api}/downloads")),
        ("events_url", format!("{api}/events")),
        ("forks_url", format!("{api}/forks")),
        ("git_commits_url", format!("{api}/git/commits{{/sha}}")),
        ("git_refs_url", format!("{api}/git/refs{{/sha}}")),
        ("git_tags_url", format!("{api}/git/tags{{/sha}}")),
        (
            "issue_comment_url",
            format!("{api}/issues/comments{{/number}}"),
        ),
        (
            "issue_events_url",
            format!("{api}/issues/events{{/number}}"),
        ),
        ("issues_url", format!("{api}/issues{{/number}}")),
        ("keys_url", format!("{api}/keys{{/key_id}}")),
        ("labels_url", format!("{api}/labels{{/name}}")),
        ("languages_url", format!("{api}/languages")),
        ("merges_url", format!("{api}/merges")),
        ("milestones_url", format!("{api}/milestones{{/number}}")),
        (
            "notifications_url",
            format!("{api}/notifications{{?since,all,participating}}"),
        ),
        ("pulls_url", format!("{api}/pulls{{/number}}")),
        ("releases_url", format!("{api}/releases{{/id}}")),
        ("stargazers_url", format!("{api}/stargazers")),
        ("statuses_url", format!("{api}/statuses/{{sha}}")),
        ("subscribers_url", format!("{api}/subscribers")),
        ("subscription_url", format!("{api}/subscription")),
        ("tags_url", format!("{api}/tags")),
        ("teams_url", format!("{api}/teams")),
        ("git_url", format!("git://{}/{o}/{n}.git", super::GIT_HOST)),
        ("ssh_url", format!("git@{}:{o}/{n}.git", super::GIT_HOST)),
        ("trees_url", format!("{api}/git/trees{{/sha}}")),
    ];
    let mut v = json!({
        "id": r.id, "node_id": node_id("Repository", r.id), "name": n, "full_name": format!("{o}/{n}"),
        "owner": owner_json(ctx, o), "private": true, "visibility": "private",
        "html_url": web, "description": null, "fork": false, "url": api,
        "clone_url": format!("{web}.git"),
        "mirror_url": null,
        "hooks_url": format!("{api}/hooks"),
        "svn_url": web,
        "homepage": null, "language": null,
        "forks_count": 0, "forks": 0, "stargazers_count": 0, "watchers_count": 0, "watchers": 0,
        "size": 0, "default_branch": r.default_branch,
        "open_issues_count": open, "open_issues": open,
        "is_template": false, "topics": [],
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false,
        "has_downloads": true, "has_discussions": false, "archived": false, "disabled": false,
        "pushed_at": pushed, "created_at": created, "updated_at": pushed,
        "allow_forking": false, "web_commit_signoff_required": false,
        "allow_squash_merge": true, "allow_merge_commit": true, "allow_rebase_merge": true,
        "allow_auto_merge": false, "delete_branch_on_merge": false,
        "subscribers_count": 0, "network_count": 0, "license": null,
    });
    for (k, u) in url_fields {
        v[k] = json!(u);
    }
    if let Some(t) = token {
        let push = t.can("contents", true);
        v["permissions"] = json!({"admin": t.installation.is_none(), "maintain": t.installation.is_none(),
                                  "push": push, "triage": push, "pull": true});
    }
    v
}

fn app_json(ctx: &Ctx<'_>) -> Value {
    let created = "2026-01-01T00:00:00Z";
    json!({
        "id": APP_ID, "slug": APP_SLUG, "client_id": APP_CLIENT_ID,
        "node_id": node_id("App", APP_ID),
        "owner": user_json(ctx, "expedite", 4_242_000, "Organization"),
        "name": "expedite sandbox",
        "description": "The expedite sandbox's GitHub App (test credentials).",
        "external_url": ctx.web.clone(),
        "html_url": format!("{}/apps/{APP_SLUG}", ctx.web),
        "created_at": created, "updated_at": created,
        "permissions": super::default_permissions(),
        "events": [],
        "installations_count": ctx.gh.state().installations.len(),
    })
}

fn installation_json(ctx: &Ctx<'_>, i: &super::Installation) -> Value {
    let t = iso(i.created_at);
    json!({
        "id": i.id, "app_id": APP_ID, "app_slug": APP_SLUG, "client_id": APP_CLIENT_ID,
        "target_id": fnv(&i.owner), "target_type": "Organization",
        "account": owner_json(ctx, &i.owner),
        "repository_selection": "all",
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", ctx.api, i.id),
        "repositories_url": format!("{}/installation/repositories", ctx.api),
        "html_url": format!("{}/organizations/{}/settings/installations/{}", ctx.web, i.owner, i.id),
        "events": [], "permissions": i.permissions,
        "created_at": t, "updated_at": t,
        "single_file_name": null, "has_multiple_single_files": false, "single_file_paths": [],
        "suspended_by": null, "suspended_at": null,
    })
}

// ---------------------------------------------------------------- issues, pulls

fn find_item<'a>(r: &'a Repo, n: &str) -> Option<&'a Item> {
    let n: u64 = n.parse().ok()?;
    r.items.iter().find(|i| i.number == n)
}

fn sort_items(ctx: &Ctx<'_>, list: &mut Vec<&Item>) {
    let asc = ctx.req.query_param("direction") == Some("asc");
    let by_updated = ctx.req.query_param("sort") == Some("updated");
    list.sort_by_key(|i| {
        if by_updated {
            (i.updated_at, i.number)
        } else {
            (i.created_at, i.number)
        }
    });
    if !asc {
        list.reverse();
    }
}

fn label_json(ctx: &Ctx<'_>, r: &Repo, name: &str) -> Value {
    let l = r
        .labels
        .get(&name.to_ascii_lowercase())
        .cloned()
        .unwrap_or(Label {
            id: fnv(name),
            name: name.to_owned(),
            color: "ededed".into(),
        });
    json!({
        "id": l.id, "node_id": node_id("Label", l.id),
        "url": format!("{}/repos/{}/{}/labels/{}", ctx.api, r.owner, r.name,
            percent_encoding::utf8_percent_encode(&l.name, percent_encoding::NON_ALPHANUMERIC)),
        "name": l.name, "description": null, "color": l.color, "default": false,
    })
}

fn issue_json(ctx: &Ctx<'_>, r: &Repo, i: &Item) -> Value {
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    let web = format!("{}/{}/{}", ctx.web, r.owner, r.name);
    let comments = r.comments.iter().filter(|c| c.issue == i.number).count();
    let assignees: Vec<Value> = i
        .assignees
        .iter()
        .map(|a| user_json(ctx, a, fnv(a), "User"))
        .collect();
    let kind = if i.pull.is_some() { "pull" } else { "issues" };
    let mut v = json!({
        "id": i.id, "node_id": node_id("Issue", i.id),
        "url": format!("{api}/issues/{}", i.number),
        "repository_url": api,
        "labels_url": format!("{api}/issues/{}/labels{{/name}}", i.number),
        "comments_url": format!("{api}/issues/{}/comments", i.number),
        "events_url": format!("{api}/issues/{}/events", i.number),
        "html_url": format!("{web}/{kind}/{}", i.number),
        "number": i.number, "state": i.state, "state_reason": i.state_reason,
        "title": i.title, "body": i.body,
        "user": actor_json(ctx, &i.user),
        "labels": i.labels.iter().map(|l| label_json(ctx, r, l)).collect::<Vec<_>>(),
        "assignee": assignees.first().cloned(),
        "assignees": assignees,
        "milestone": null, "locked": false, "active_lock_reason": null,
        "comments": comments,
        "created_at": iso(i.created_at), "updated_at": iso(i.updated_at),
        "closed_at": i.closed_at.map(iso), "closed_by": null,
        "author_association": "MEMBER",
        "reactions": reactions(&format!("{api}/issues/{}/reactions", i.number)),
    });
    if let Some(p) = &i.pull {
        v["draft"] = json!(p.draft);
        v["pull_request"] = json!({
            "url": format!("{api}/pulls/{}", i.number),
            "html_url": format!("{web}/pull/{}", i.number),
            "diff_url": format!("{web}/pull/{}.diff", i.number),
            "patch_url": format!("{web}/pull/{}.patch", i.number),
            "merged_at": null,
        });
    }
    v
}

fn reactions(url: &str) -> Value {
    json!({"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "confused": 0,
           "heart": 0, "hooray": 0, "eyes": 0, "rocket": 0})
}

pub(super) fn branch_sha(path: &Path, b: &str) -> Option<String> {
    list_refs(path)
        .into_iter()
        .find(|x| x.0 == format!("refs/heads/{b}"))
        .map(|x| x.1)
}

fn pull_json(ctx: &Ctx<'_>, r: &Repo, i: &Item, full: bool) -> Value {
    let p = i.pull.as_ref().cloned().unwrap_or(Pull {
        head_ref: String::new(),
        base_ref: String::new(),
        draft: false,
        maintainer_can_modify: false,
    });
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    let web = format!("{}/{}/{}", ctx.web, r.owner, r.name);
    let n = i.number;
    let head_sha = branch_sha(&r.path, &p.head_ref).unwrap_or_default();
    let base_sha = branch_sha(&r.path, &p.base_ref).unwrap_or_default();
    let repo_v = repo_json(ctx, r, None);
    let side = |rf: &str, sha: &str| {
        json!({
            "label": format!("{}:{rf}", r.owner), "ref": rf, "sha": sha,
            "user": owner_json(ctx, &r.owner), "repo": repo_v.clone(),
        })
    };
    let assignees: Vec<Value> = i
        .assignees
        .iter()
        .map(|a| user_json(ctx, a, fnv(a), "User"))
        .collect();
    let link = |h: String| json!({"href": h});
    let mut v = json!({
        "url": format!("{api}/pulls/{n}"), "id": i.pr_id, "node_id": node_id("PullRequest", i.pr_id),
        "html_url": format!("{web}/pull/{n}"),
        "diff_url": format!("{web}/pull/{n}.diff"), "patch_url": format!("{web}/pull/{n}.patch"),
        "issue_url": format!("{api}/issues/{n}"),
        "commits_url": format!("{api}/pulls/{n}/commits"),
        "review_comments_url": format!("{api}/pulls/{n}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{n}/comments"),
        "statuses_url": format!("{api}/statuses/{head_sha}"),
        "number": n, "state": i.state, "locked": false, "title": i.title,
        "user": actor_json(ctx, &i.user), "body": i.body,
        "labels": i.labels.iter().map(|l| label_json(ctx, r, l)).collect::<Vec<_>>(),
        "milestone": null, "active_lock_reason": null,
        "created_at": iso(i.created_at), "updated_at": iso(i.updated_at),
        "closed_at": i.closed_at.map(iso), "merged_at": null, "merge_commit_sha": null,
        "assignee": assignees.first().cloned(), "assignees": assignees,
        "requested_reviewers": [], "requested_teams": [],
        "head": side(&p.head_ref, &head_sha), "base": side(&p.base_ref, &base_sha),
        "_links": {
            "self": link(format!("{api}/pulls/{n}")), "html": link(format!("{web}/pull/{n}")),
            "issue": link(format!("{api}/issues/{n}")), "comments": link(format!("{api}/issues/{n}/comments")),
            "review_comments": link(format!("{api}/pulls/{n}/comments")),
            "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
            "commits": link(format!("{api}/pulls/{n}/commits")),
            "statuses": link(format!("{api}/statuses/{head_sha}")),
        },
        "author_association": "MEMBER", "auto_merge": null, "draft": p.draft,
    });
    if full {
        let comments = r.comments.iter().filter(|c| c.issue == n).count();
        let (commits, add, del, changed, mergeable) = if head_sha.is_empty() || base_sha.is_empty()
        {
            (0, 0, 0, 0, None)
        } else {
            let commits = count(&r.path, &format!("{base_sha}..{head_sha}"));
            let mb = git(&r.path, &["merge-base", &base_sha, &head_sha])
                .ok()
                .map(|s| s.trim().to_owned());
            let files = diff_files(ctx, &r.path, &r.owner, &r.name, mb.as_deref(), &head_sha);
            let add: u64 = files
                .iter()
                .map(|f| f["additions"].as_u64().unwrap_or(0))
                .sum();
            let del: u64 = files
                .iter()
                .map(|f| f["deletions"].as_u64().unwrap_or(0))
                .sum();
            let clean = git(
                &r.path,
                &["merge-tree", "--write-tree", &base_sha, &head_sha],
            )
            .is_ok();
            (commits, add, del, files.len(), Some(clean))
        };
        v["merged"] = json!(false);
        v["mergeable"] = json!(mergeable);
        v["rebaseable"] = json!(mergeable);
        v["mergeable_state"] = json!(match (mergeable, p.draft) {
            (None, _) => "unknown",
            (Some(false), _) => "dirty",
            (Some(true), true) => "draft",
            (Some(true), false) => "clean",
        });
        v["merged_by"] = Value::Null;
        v["comments"] = json!(comments);
        v["review_comments"] = json!(0);
        v["maintainer_can_modify"] = json!(p.maintainer_can_modify);
        v["commits"] = json!(commits);
        v["additions"] = json!(add);
        v["deletions"] = json!(del);
        v["changed_files"] = json!(changed);
    }
    v
}

/// `diff` or `patch` when `Accept` asks for GitHub's diff or patch media
/// type (`application/vnd.github[.v3].diff`), as `gh pr diff` does.
fn diff_media_type(req: &Req) -> Option<&'static str> {
    let accept = req.header("accept")?.to_ascii_lowercase();
    accept.split(',').find_map(|t| {
        let t = t.split(';').next().unwrap_or("").trim();
        let t = t.strip_prefix("application/vnd.github")?;
        match t.strip_prefix(".v3").unwrap_or(t) {
            ".diff" => Some("diff"),
            ".patch" => Some("patch"),
            _ => None,
        }
    })
}

/// A pull request as a diff (merge base to head, what `.diff` shows) or as
/// a patch series (`git format-patch`, what `.patch` shows).
fn pull_diff(r: &Repo, i: &Item, format: &str, doc: &str) -> R<Resp> {
    let p = i.pull.as_ref().ok_or_else(|| not_found(doc))?;
    let (Some(base), Some(head)) = (
        branch_sha(&r.path, &p.base_ref),
        branch_sha(&r.path, &p.head_ref),
    ) else {
        return Err(unprocessable(
            "The head or base branch of this pull request is gone.",
            doc,
        ));
    };
    let mb = git(&r.path, &["merge-base", &base, &head])
        .map(|s| s.trim().to_owned())
        .map_err(|_| unprocessable("No common ancestor between the base and head.", doc))?;
    let out = if format == "diff" {
        git(
            &r.path,
            &["diff", "--no-color", "--no-ext-diff", "-M", &mb, &head],
        )
    } else {
        git(
            &r.path,
            &[
                "format-patch",
                "--stdout",
                "--no-color",
                &format!("{mb}..{head}"),
            ],
        )
    }
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e, doc))?;
    Ok(respond::build(
        StatusCode::OK,
        Some(&format!("application/vnd.github.{format}; charset=utf-8")),
        bytes::Bytes::from(out),
    ))
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .or_else(|| x.get("name").and_then(Value::as_str).map(str::to_owned))
            })
            .collect()
    })
}

fn ensure_labels(st: &mut State, key: &str, labels: &[String]) {
    let mut ids = Vec::new();
    for _ in labels {
        ids.push(st.id());
    }
    let r = st.repos.get_mut(key).expect("repo checked");
    for (l, id) in labels.iter().zip(ids) {
        r.labels.entry(l.to_ascii_lowercase()).or_insert(Label {
            id,
            name: l.clone(),
            color: "ededed".into(),
        });
    }
}

fn canonical_labels(st: &State, key: &str, labels: &[String]) -> Vec<String> {
    let r = &st.repos[key];
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        let name = r
            .labels
            .get(&l.to_ascii_lowercase())
            .map(|x| x.name.clone())
            .unwrap_or_else(|| l.clone());
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
            out.push(name);
        }
    }
    out
}

fn new_item(
    st: &mut State,
    key: &str,
    token: &Token,
    title: String,
    body: Option<String>,
    pull: Option<Pull>,
) -> u64 {
    let id = st.id();
    let pr_id = st.id();
    let r = st.repos.get_mut(key).expect("repo checked");
    let number = r.items.len() as u64 + 1;
    let now = Utc::now();
    r.items.push(Item {
        number,
        id,
        pr_id,
        title,
        body,
        state: "open".into(),
        state_reason: None,
        labels: Vec::new(),
        assignees: Vec::new(),
        user: token.actor.clone(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        pull,
    });
    number
}

fn create_issue(ctx: &Ctx<'_>, st: &mut State, key: &str, token: &Token, doc: &str) -> R<Resp> {
    let body = body_json(ctx.req, doc)?;
    let title = match body.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(invalid(
                doc,
                json!([{"resource": "Issue", "field": "title", "code": "missing_field"}]),
            ));
        }
    };
    let text = body.get("body").and_then(Value::as_str).map(str::to_owned);
    let labels = strings(body.get("labels")).unwrap_or_default();
    let assignees = strings(body.get("assignees")).unwrap_or_default();
    ensure_labels(st, key, &labels);
    let labels = canonical_labels(st, key, &labels);
    let n = new_item(st, key, token, title, text, None);
    let r = st.repos.get_mut(key).expect("repo checked");
    let item = r.items.last_mut().expect("just pushed");
    item.labels = labels;
    item.assignees = assignees;
    let r = &st.repos[key];
    let item = r.items.iter().find(|i| i.number == n).expect("just pushed");
    let mut resp = respond::json(StatusCode::CREATED, &issue_json(ctx, r, item));
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{}/{}/issues/{n}", ctx.api, r.owner, r.name),
    );
    Ok(resp)
}

/// `title` and `body` of an issue or pull request update (`body: null`
/// clears it), as both PATCH endpoints take them.
fn set_title_and_body(item: &mut Item, body: &Value) {
    if let Some(Value::String(t)) = body.get("title") {
        item.title = t.clone();
    }
    match body.get("body") {
        Some(Value::String(b)) => item.body = Some(b.clone()),
        Some(Value::Null) => item.body = None,
        _ => {}
    }
}

fn create_pull(ctx: &Ctx<'_>, st: &mut State, key: &str, token: &Token, doc: &str) -> R<Resp> {
    let body = body_json(ctx.req, doc)?;
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let r = &st.repos[key];
    let from_issue = body.get("issue").and_then(Value::as_u64);
    let mut errors = Vec::new();
    if s("title").is_none_or(|t| t.trim().is_empty()) && from_issue.is_none() {
        errors.push(json!({"resource": "PullRequest", "field": "title", "code": "missing_field"}));
    }
    let head_raw = s("head").unwrap_or_default();
    let head = match head_raw.split_once(':') {
        Some((o, b)) if o.eq_ignore_ascii_case(&r.owner) => b.to_owned(),
        Some(_) => String::new(),
        None => head_raw.clone(),
    };
    let base = s("base").unwrap_or_default();
    let head_sha = if head.is_empty() {
        None
    } else {
        branch_sha(&r.path, &head)
    };
    let base_sha = if base.is_empty() {
        None
    } else {
        branch_sha(&r.path, &base)
    };
    if head_sha.is_none() {
        errors.push(json!({"resource": "PullRequest", "field": "head", "code": "invalid"}));
    }
    if base_sha.is_none() {
        errors.push(json!({"resource": "PullRequest", "field": "base", "code": "invalid"}));
    }
    if !errors.is_empty() {
        return Err(invalid(doc, json!(errors)));
    }
    let (head_sha, base_sha) = (head_sha.unwrap_or_default(), base_sha.unwrap_or_default());
    if r.items.iter().any(|i| {
        i.state == "open"
            && i.pull
                .as_ref()
                .is_some_and(|p| p.head_ref == head && p.base_ref == base)
    }) {
        return Err(invalid(
            doc,
            json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("A pull request already exists for {}:{head}.", r.owner)}]),
        ));
    }
    if count(&r.path, &format!("{base_sha}..{head_sha}")) == 0 {
        return Err(invalid(
            doc,
            json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("No commits between {base} and {head}")}]),
        ));
    }
    let pull = Pull {
        head_ref: head,
        base_ref: base,
        draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
        maintainer_can_modify: body
            .get("maintainer_can_modify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let n = if let Some(num) = from_issue {
        let r = st.repos.get_mut(key).expect("repo checked");
        let Some(item) = r
            .items
            .iter_mut()
            .find(|i| i.number == num && i.pull.is_none())
        else {
            return Err(invalid(
                doc,
                json!([{"resource": "PullRequest", "field": "issue", "code": "invalid"}]),
            ));
        };
        item.pull = Some(pull);
        item.updated_at = Utc::now();
        num
    } else {
        new_item(
            st,
            key,
            token,
            s("title").unwrap_or_default(),
            s("body"),
            Some(pull),
        )
    };
    let r = &st.repos[key];
    let item = r.items.iter().find(|i| i.number == n).expect("exists");
    let mut resp = respond::json(StatusCode::CREATED, &pull_json(ctx, r, item, true));
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{}/{}/pulls/{n}", ctx.api, r.owner, r.name),
    );
    Ok(resp)
}

fn issue_route(
    ctx: &Ctx<'_>,
    st: &mut State,
    key: &str,
    token: &Token,
    n: &str,
    sub: &[&str],
    doc: &str,
) -> R<Resp> {
    let m = ctx.req.method.as_str();
    let num: u64 = find_item(&st.repos[key], n)
        .map(|i| i.number)
        .ok_or_else(|| not_found(doc))?;
    let item_of = |st: &State| -> Item {
        st.repos[key]
            .items
            .iter()
            .find(|i| i.number == num)
            .cloned()
            .expect("exists")
    };
    match (m, sub) {
        ("GET", []) => Ok(respond::json(
            StatusCode::OK,
            &issue_json(ctx, &st.repos[key], &item_of(st)),
        )),
        ("PATCH", []) => {
            let body = body_json(ctx.req, doc)?;
            let state = body.get("state").and_then(Value::as_str);
            if let Some(s) = state
                && !matches!(s, "open" | "closed")
            {
                return Err(invalid(
                    doc,
                    json!([{"resource": "Issue", "field": "state", "code": "invalid", "value": s}]),
                ));
            }
            let reason = body.get("state_reason");
            if let Some(Value::String(r)) = reason
                && !matches!(
                    r.as_str(),
                    "completed" | "not_planned" | "reopened" | "duplicate"
                )
            {
                return Err(invalid(
                    doc,
                    json!([{"resource": "Issue", "field": "state_reason", "code": "invalid", "value": r}]),
                ));
            }
            if let Some(Value::String(t)) = body.get("title")
                && t.trim().is_empty()
            {
                return Err(invalid(
                    doc,
                    json!([{"resource": "Issue", "field": "title", "code": "missing_field"}]),
                ));
            }
            let labels = strings(body.get("labels"));
            if let Some(l) = &labels {
                ensure_labels(st, key, l);
            }
            let labels = labels.map(|l| canonical_labels(st, key, &l));
            let r = st.repos.get_mut(key).expect("repo checked");
            let item = r
                .items
                .iter_mut()
                .find(|i| i.number == num)
                .expect("exists");
            let now = Utc::now();
            set_title_and_body(item, &body);
            if let Some(l) = labels {
                item.labels = l;
            }
            if let Some(a) = strings(body.get("assignees")) {
                item.assignees = a;
            }
            match state {
                Some("closed") if item.state != "closed" => {
                    item.state = "closed".into();
                    item.closed_at = Some(now);
                    item.state_reason = Some(
                        reason
                            .and_then(Value::as_str)
                            .unwrap_or("completed")
                            .to_owned(),
                    );
                }
                Some("open") if item.state != "open" => {
                    item.state = "open".into();
                    item.closed_at = None;
                    item.state_reason = Some("reopened".into());
                }
                _ => {
                    if let Some(Value::String(r)) = reason {
                        item.state_reason = Some(r.clone());
                    }
                }
            }
            item.updated_at = now;
            Ok(respond::json(
                StatusCode::OK,
                &issue_json(ctx, &st.repos[key], &item_of(st)),
            ))
        }
        ("POST", ["comments"]) => {
            let body = body_json(ctx.req, doc)?;
            let Some(text) = body
                .get("body")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
            else {
                return Err(invalid(
                    doc,
                    json!([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]),
                ));
            };
            let id = st.id();
            let r = st.repos.get_mut(key).expect("repo checked");
            let now = Utc::now();
            let c = Comment {
                id,
                issue: num,
                body: text.to_owned(),
                user: token.actor.clone(),
                created_at: now,
            };
            r.comments.push(c.clone());
            if let Some(item) = r.items.iter_mut().find(|i| i.number == num) {
                item.updated_at = now;
            }
            let r = &st.repos[key];
            let mut resp = respond::json(StatusCode::CREATED, &comment_json(ctx, r, &c));
            respond::set_header(
                &mut resp,
                "location",
                &format!(
                    "{}/repos/{}/{}/issues/comments/{id}",
                    ctx.api, r.owner, r.name
                ),
            );
            Ok(resp)
        }
        ("GET", ["comments"]) => {
            let r = &st.repos[key];
            let list: Vec<Value> = r
                .comments
                .iter()
                .filter(|c| c.issue == num)
                .map(|c| comment_json(ctx, r, c))
                .collect();
            Ok(paginate(ctx, list))
        }
        ("POST", ["labels"]) => {
            let body = body_json(ctx.req, doc)?;
            let labels = if body.is_array() {
                strings(Some(&body))
            } else {
                strings(body.get("labels"))
            };
            let Some(labels) = labels else {
                return Err(invalid(
                    doc,
                    json!([{"resource": "Label", "field": "labels", "code": "missing_field"}]),
                ));
            };
            ensure_labels(st, key, &labels);
            let labels = canonical_labels(st, key, &labels);
            let r = st.repos.get_mut(key).expect("repo checked");
            let item = r
                .items
                .iter_mut()
                .find(|i| i.number == num)
                .expect("exists");
            for l in labels {
                if !item.labels.iter().any(|x| x.eq_ignore_ascii_case(&l)) {
                    item.labels.push(l);
                }
            }
            item.updated_at = Utc::now();
            let r = &st.repos[key];
            let item = item_of(st);
            let list: Vec<Value> = item.labels.iter().map(|l| label_json(ctx, r, l)).collect();
            Ok(respond::json(StatusCode::OK, &json!(list)))
        }
        ("POST", ["assignees"]) => {
            let body = body_json(ctx.req, doc)?;
            let add = strings(body.get("assignees")).unwrap_or_default();
            let r = st.repos.get_mut(key).expect("repo checked");
            let item = r
                .items
                .iter_mut()
                .find(|i| i.number == num)
                .expect("exists");
            for a in add {
                if item.assignees.len() < 10
                    && !item.assignees.iter().any(|x| x.eq_ignore_ascii_case(&a))
                {
                    item.assignees.push(a);
                }
            }
            item.updated_at = Utc::now();
            Ok(respond::json(
                StatusCode::CREATED,
                &issue_json(ctx, &st.repos[key], &item_of(st)),
            ))
        }
        _ => Err(not_found(doc)),
    }
}

fn comment_json(ctx: &Ctx<'_>, r: &Repo, c: &Comment) -> Value {
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    let t = iso(c.created_at);
    let kind = if r
        .items
        .iter()
        .any(|i| i.number == c.issue && i.pull.is_some())
    {
        "pull"
    } else {
        "issues"
    };
    json!({
        "id": c.id, "node_id": node_id("IssueComment", c.id),
        "url": format!("{api}/issues/comments/{}", c.id),
        "html_url": format!("{}/{}/{}/{kind}/{}#issuecomment-{}", ctx.web, r.owner, r.name, c.issue, c.id),
        "issue_url": format!("{api}/issues/{}", c.issue),
        "body": c.body, "user": actor_json(ctx, &c.user),
        "created_at": t, "updated_at": t, "author_association": "MEMBER",
        "reactions": reactions(&format!("{api}/issues/comments/{}/reactions", c.id)),
    })
}

// ---------------------------------------------------------------- deployments

fn create_deployment(
    ctx: &Ctx<'_>,
    st: &mut State,
    key: &str,
    token: &Token,
    doc: &str,
) -> R<Resp> {
    let body = body_json(ctx.req, doc)?;
    let Some(git_ref) = body.get("ref").and_then(Value::as_str).map(str::to_owned) else {
        return Err(invalid(
            doc,
            json!([{"resource": "Deployment", "field": "ref", "code": "missing_field"}]),
        ));
    };
    let path: PathBuf = st.repos[key].path.clone();
    let sha = resolve_commit(&path, &git_ref)
        .ok_or_else(|| unprocessable(&format!("No ref found for: {git_ref}"), doc))?;
    let environment = body
        .get("environment")
        .and_then(Value::as_str)
        .unwrap_or("production")
        .to_owned();
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return Err(invalid(
            doc,
            json!([{"resource": "Deployment", "field": "description", "code": "custom",
            "message": "description is too long (maximum is 140 characters)"}]),
        ));
    }
    let payload = match body.get("payload") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        Some(v) => v.clone(),
    };
    let production = body
        .get("production_environment")
        .and_then(Value::as_bool)
        .unwrap_or(environment == "production");
    let transient = body
        .get("transient_environment")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = st.id();
    let now = Utc::now();
    let d = Deployment {
        id,
        sha,
        git_ref,
        task: body
            .get("task")
            .and_then(Value::as_str)
            .unwrap_or("deploy")
            .to_owned(),
        payload,
        original_environment: environment.clone(),
        environment,
        description,
        creator: token.actor.clone(),
        created_at: now,
        updated_at: now,
        transient,
        production,
        statuses: Vec::new(),
    };
    let r = st.repos.get_mut(key).expect("repo checked");
    r.deployments.push(d.clone());
    let r = &st.repos[key];
    let mut resp = respond::json(StatusCode::CREATED, &deployment_json(ctx, r, &d));
    respond::set_header(
        &mut resp,
        "location",
        &format!("{}/repos/{}/{}/deployments/{id}", ctx.api, r.owner, r.name),
    );
    Ok(resp)
}

fn deployment_json(ctx: &Ctx<'_>, r: &Repo, d: &Deployment) -> Value {
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    json!({
        "url": format!("{api}/deployments/{}", d.id), "id": d.id, "node_id": node_id("Deployment", d.id),
        "sha": d.sha, "ref": d.git_ref, "task": d.task, "payload": d.payload,
        "original_environment": d.original_environment, "environment": d.environment,
        "description": d.description, "creator": actor_json(ctx, &d.creator),
        "created_at": iso(d.created_at), "updated_at": iso(d.updated_at),
        "statuses_url": format!("{api}/deployments/{}/statuses", d.id),
        "repository_url": api,
        "transient_environment": d.transient, "production_environment": d.production,
    })
}

fn create_deployment_status(
    ctx: &Ctx<'_>,
    st: &mut State,
    key: &str,
    token: &Token,
    id: &str,
    doc: &str,
) -> R<Resp> {
    let body = body_json(ctx.req, doc)?;
    if !st.repos[key]
        .deployments
        .iter()
        .any(|d| d.id.to_string() == id)
    {
        return Err(not_found(doc));
    }
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let state = s("state").unwrap_or_default();
    if !matches!(
        state.as_str(),
        "error" | "failure" | "inactive" | "in_progress" | "queued" | "pending" | "success"
    ) {
        return Err(invalid(
            doc,
            json!([{"resource": "DeploymentStatus", "field": "state", "code": "invalid"}]),
        ));
    }
    let description = s("description").unwrap_or_default();
    if description.chars().count() > 140 {
        return Err(invalid(
            doc,
            json!([{"resource": "DeploymentStatus", "field": "description", "code": "custom",
            "message": "description is too long (maximum is 140 characters)"}]),
        ));
    }
    let log_url = s("log_url").or_else(|| s("target_url")).unwrap_or_default();
    let auto_inactive = body
        .get("auto_inactive")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let sid = st.id();
    let now = Utc::now();
    let r = st.repos.get_mut(key).expect("repo checked");
    let idx = r
        .deployments
        .iter()
        .position(|d| d.id.to_string() == id)
        .expect("checked");
    let environment = s("environment").unwrap_or_else(|| r.deployments[idx].environment.clone());
    let status = DeploymentStatus {
        id: sid,
        state: state.clone(),
        description,
        environment: environment.clone(),
        target_url: log_url.clone(),
        log_url,
        environment_url: s("environment_url").unwrap_or_default(),
        creator: token.actor.clone(),
        created_at: now,
    };
    {
        let d = &mut r.deployments[idx];
        d.environment = environment.clone();
        d.updated_at = now;
        d.statuses.push(status.clone());
    }
    if state == "success" && auto_inactive {
        // Docs: prior non-transient, non-production deployments of the same
        // environment get an `inactive` status.
        let mut extra = Vec::new();
        for (j, d) in r.deployments.iter().enumerate() {
            if j != idx
                && d.environment == environment
                && !d.transient
                && !d.production
                && d.statuses.last().is_some_and(|s| s.state == "success")
            {
                extra.push(j);
            }
        }
        for j in extra {
            let d = &mut r.deployments[j];
            let mut s = status.clone();
            s.state = "inactive".into();
            s.description = String::new();
            d.statuses.push(s);
            d.updated_at = now;
        }
    }
    let r = &st.repos[key];
    let d = &r.deployments[idx];
    let mut resp = respond::json(
        StatusCode::CREATED,
        &deployment_status_json(ctx, r, d, &status),
    );
    respond::set_header(
        &mut resp,
        "location",
        &format!(
            "{}/repos/{}/{}/deployments/{}/statuses/{sid}",
            ctx.api, r.owner, r.name, d.id
        ),
    );
    Ok(resp)
}

fn deployment_status_json(ctx: &Ctx<'_>, r: &Repo, d: &Deployment, s: &DeploymentStatus) -> Value {
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    let t = iso(s.created_at);
    json!({
        "url": format!("{api}/deployments/{}/statuses/{}", d.id, s.id), "id": s.id,
        "node_id": node_id("DeploymentStatus", s.id), "state": s.state,
        "creator": actor_json(ctx, &s.creator), "description": s.description,
        "environment": s.environment, "target_url": s.target_url, "log_url": s.log_url,
        "environment_url": s.environment_url,
        "created_at": t, "updated_at": t,
        "deployment_url": format!("{api}/deployments/{}", d.id), "repository_url": api,
    })
}
