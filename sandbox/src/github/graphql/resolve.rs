//! Field resolvers: what each schema field answers, read from the same
//! state and bare repositories the REST handlers serve (one lock held for
//! the whole request, so an answer is one consistent snapshot). Ids are
//! the REST `node_id`s, numbers and counts the REST numbers. What the
//! sandbox does not hold — milestones, projects, reviews, reactions,
//! checks — answers as GitHub does for a repository without them (null,
//! empty connections, zero counts).

use std::rc::Rc;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::exec::SUBSET_NOTE;
use super::schema::schema;
use super::syntax::{EnumValueDef, FieldDef, InputValueDef, Kind, TypeRef};
use crate::github::rest::{
    CommitInfo, Ctx, Person, branch_sha, commit_info, count, diff_files, fnv, iso, list_refs,
    node_id,
};
use crate::github::{Actor, Comment, Item, Repo, State, Token, git, repo_key};

/// A field's failure: GitHub's `type` (`NOT_FOUND`, `FORBIDDEN`) and message.
#[derive(Debug)]
pub(super) struct FieldError {
    pub kind: Option<&'static str>,
    pub message: String,
}

impl FieldError {
    pub fn plain(message: String) -> Self {
        FieldError {
            kind: None,
            message,
        }
    }

    fn not_found(message: String) -> Self {
        FieldError {
            kind: Some("NOT_FOUND"),
            message,
        }
    }

    fn forbidden() -> Self {
        FieldError {
            kind: Some("FORBIDDEN"),
            message: "Resource not accessible by integration".to_owned(),
        }
    }
}

type R<T> = Result<T, FieldError>;

/// A field's arguments, coerced; `wants_items` when the selection asks a
/// connection for `nodes` or `edges`.
pub(super) struct Args {
    pub map: Map<String, Value>,
    pub wants_items: bool,
    pub field: String,
}

impl Args {
    fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }

    fn int(&self, k: &str) -> Option<i64> {
        self.get(k).and_then(Value::as_i64)
    }

    fn bool(&self, k: &str) -> Option<bool> {
        self.get(k).and_then(Value::as_bool)
    }

    fn strs(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    }
}

/// What a resolver answers: a leaf value, an object to select on, a list.
pub(super) enum Out<'a> {
    Null,
    Scalar(Value),
    Obj(Obj<'a>),
    List(Vec<Out<'a>>),
}

fn s(v: impl Into<Value>) -> R<Out<'static>> {
    Ok(Out::Scalar(v.into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AccountKind {
    User,
    Bot,
    Organization,
}

#[derive(Clone)]
pub(super) struct Account {
    kind: AccountKind,
    /// The REST login (`expedite-sandbox[bot]` for the App's bot).
    login: String,
    id: u64,
}

impl Account {
    fn of(a: &Actor) -> Self {
        Account {
            kind: if a.bot {
                AccountKind::Bot
            } else {
                AccountKind::User
            },
            login: a.login.clone(),
            id: a.id,
        }
    }

    fn user(login: &str) -> Self {
        Account {
            kind: AccountKind::User,
            login: login.to_owned(),
            id: fnv(login),
        }
    }

    fn organization(login: &str) -> Self {
        Account {
            kind: AccountKind::Organization,
            login: login.to_owned(),
            id: fnv(login),
        }
    }

    /// GraphQL spells a bot's login without `[bot]`.
    fn graphql_login(&self) -> &str {
        match self.kind {
            AccountKind::Bot => self.login.trim_end_matches("[bot]"),
            _ => &self.login,
        }
    }
}

pub(super) struct ChangedFile {
    path: String,
    additions: u64,
    deletions: u64,
    change: &'static str,
}

pub(super) struct PageInfo {
    start: Option<String>,
    end: Option<String>,
    has_next: bool,
    has_prev: bool,
}

pub(super) struct Conn<'a> {
    ty: &'static str,
    edge: &'static str,
    items: Vec<(Obj<'a>, String)>,
    total: usize,
    page: PageInfo,
}

/// Everything a field can be asked on.
pub(super) enum Obj<'a> {
    Query,
    Repo(&'a Repo),
    /// An issue or a pull request (`Item::pull`).
    Item(&'a Repo, &'a Item),
    Comment(&'a Repo, &'a Comment),
    Account(Account),
    Label(&'a Repo, String),
    /// A ref: full name and the object it points at.
    Ref(&'a Repo, String, String),
    Commit(&'a Repo, Rc<CommitInfo>),
    PrCommit(&'a Repo, u64, Rc<CommitInfo>),
    GitActor(Person),
    File(ChangedFile),
    ReactionGroup(&'static str),
    Conn(Box<Conn<'a>>),
    Edge(&'static str, Box<Obj<'a>>, String),
    PageInfo(PageInfo),
    Type(TypeRef),
    Field(&'static FieldDef),
    InputValue(&'static InputValueDef),
    EnumValue(&'static EnumValueDef),
}

impl Obj<'_> {
    pub fn type_name(&self) -> String {
        match self {
            Obj::Query => "Query",
            Obj::Repo(_) => "Repository",
            Obj::Item(_, i) if i.pull.is_some() => "PullRequest",
            Obj::Item(..) => "Issue",
            Obj::Comment(..) => "IssueComment",
            Obj::Account(a) => match a.kind {
                AccountKind::User => "User",
                AccountKind::Bot => "Bot",
                AccountKind::Organization => "Organization",
            },
            Obj::Label(..) => "Label",
            Obj::Ref(..) => "Ref",
            Obj::Commit(..) => "Commit",
            Obj::PrCommit(..) => "PullRequestCommit",
            Obj::GitActor(_) => "GitActor",
            Obj::File(_) => "PullRequestChangedFile",
            Obj::ReactionGroup(_) => "ReactionGroup",
            Obj::Conn(c) => c.ty,
            Obj::Edge(t, ..) => t,
            Obj::PageInfo(_) => "PageInfo",
            Obj::Type(_) => "__Type",
            Obj::Field(_) => "__Field",
            Obj::InputValue(_) => "__InputValue",
            Obj::EnumValue(_) => "__EnumValue",
        }
        .to_owned()
    }
}

/// The order GitHub lists reaction groups in.
const REACTIONS: [&str; 8] = [
    "THUMBS_UP",
    "THUMBS_DOWN",
    "LAUGH",
    "HOORAY",
    "CONFUSED",
    "HEART",
    "ROCKET",
    "EYES",
];

/// The largest page GitHub serves.
const MAX_PAGE: i64 = 100;

fn cursor(index: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:{}", index + 1))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let n: usize = text.strip_prefix("cursor:")?.parse().ok()?;
    n.checked_sub(1)
}

pub(super) struct Resolver<'a> {
    pub ctx: &'a Ctx<'a>,
    pub st: &'a State,
    pub token: &'a Token,
}

impl<'a> Resolver<'a> {
    fn web(&self) -> &str {
        &self.ctx.web
    }

    /// A connection over `all`, paged the way GitHub pages (`first`/`last`
    /// at most 100, `after`/`before` cursors).
    fn connection(&self, args: &Args, ty: &str, all: Vec<Obj<'a>>) -> R<Out<'a>> {
        let total = all.len();
        self.connection_of(args, ty, total, |start, end| {
            all.into_iter().skip(start).take(end - start).collect()
        })
    }

    /// A connection over `total` items of which only the page asked for
    /// is made (by `page(start, end)`).
    fn connection_of(
        &self,
        args: &Args,
        ty: &str,
        total: usize,
        page: impl FnOnce(usize, usize) -> Vec<Obj<'a>>,
    ) -> R<Out<'a>> {
        let conn_type = schema()
            .get(ty)
            .ok_or_else(|| FieldError::plain(format!("internal sandbox error: no type {ty}")))?;
        let edge = conn_type
            .field("edges")
            .and_then(|f| schema().get(f.ty.named()))
            .map(|t| t.name.as_str())
            .unwrap_or("");
        let name = &args.field;
        let first = args.int("first");
        let last = args.int("last");
        for (k, v) in [("first", first), ("last", last)] {
            match v {
                Some(n) if n > MAX_PAGE => {
                    return Err(FieldError::plain(format!(
                        "Requesting {n} records on the `{name}` connection exceeds the `{k}` limit of {MAX_PAGE} records."
                    )));
                }
                Some(n) if n < 0 => {
                    return Err(FieldError::plain(format!(
                        "`{k}` on the `{name}` connection cannot be less than zero."
                    )));
                }
                _ => {}
            }
        }
        if args.wants_items && first.is_none() && last.is_none() {
            return Err(FieldError::plain(format!(
                "You must provide a `first` or `last` value to properly paginate the `{name}` connection."
            )));
        }
        let mut start = 0usize;
        let mut end = total;
        if let Some(a) = args.str("after") {
            let i = decode_cursor(a).ok_or_else(|| {
                FieldError::plain(format!("`{a}` does not appear to be a valid cursor."))
            })?;
            start = (i + 1).min(total);
        }
        if let Some(b) = args.str("before") {
            let i = decode_cursor(b).ok_or_else(|| {
                FieldError::plain(format!("`{b}` does not appear to be a valid cursor."))
            })?;
            end = i.min(total).max(start);
        }
        if let Some(f) = first {
            end = end.min(start + usize::try_from(f).unwrap_or(0));
        }
        if let Some(l) = last {
            start = start.max(end.saturating_sub(usize::try_from(l).unwrap_or(0)));
        }
        let items: Vec<(Obj<'a>, String)> = if args.wants_items {
            page(start, end)
                .into_iter()
                .enumerate()
                .map(|(k, o)| (o, cursor(start + k)))
                .collect()
        } else {
            Vec::new()
        };
        let info = PageInfo {
            start: (start < end).then(|| cursor(start)),
            end: (start < end).then(|| cursor(end - 1)),
            has_next: end < total,
            has_prev: start > 0,
        };
        Ok(Out::Obj(Obj::Conn(Box::new(Conn {
            ty: conn_type.name.as_str(),
            edge,
            items,
            total,
            page: info,
        }))))
    }

    /// `search`'s result connection.
    pub fn search_connection(&self, args: &Args, all: Vec<Obj<'a>>) -> R<Out<'a>> {
        self.connection(args, "SearchResultItemConnection", all)
    }

    fn account(&self, a: Account) -> Out<'a> {
        Out::Obj(Obj::Account(a))
    }

    fn can_read(&self, item: &Item) -> R<()> {
        let perm = if item.pull.is_some() {
            "pull_requests"
        } else {
            "issues"
        };
        if self.token.can(perm, false) {
            Ok(())
        } else {
            Err(FieldError::forbidden())
        }
    }

    fn need(&self, perm: &str) -> R<()> {
        if self.token.can(perm, false) {
            Ok(())
        } else {
            Err(FieldError::forbidden())
        }
    }

    pub fn resolve(&self, obj: &Obj<'a>, parent: &str, field: &str, args: &Args) -> R<Out<'a>> {
        let unknown = || {
            Err(FieldError::plain(format!(
                "internal sandbox error: {parent}.{field} has no resolver ({SUBSET_NOTE})"
            )))
        };
        match obj {
            Obj::Query => self.query(field, args).unwrap_or_else(unknown),
            Obj::Repo(r) => self.repository(r, field, args).unwrap_or_else(unknown),
            Obj::Item(r, i) => self.item(r, i, field, args).unwrap_or_else(unknown),
            Obj::Comment(r, c) => self.comment(r, c, field).unwrap_or_else(unknown),
            Obj::Account(a) => self.account_field(a, field, args).unwrap_or_else(unknown),
            Obj::Label(r, l) => self.label(r, l, field).unwrap_or_else(unknown),
            Obj::Ref(r, name, sha) => self.git_ref(r, name, sha, field).unwrap_or_else(unknown),
            Obj::Commit(r, c) => self.commit(r, c, field, args).unwrap_or_else(unknown),
            Obj::PrCommit(r, n, c) => match field {
                "commit" => Ok(Out::Obj(Obj::Commit(r, c.clone()))),
                "id" => s(node_id("PullRequestCommit", fnv(&format!("{n}:{}", c.sha)))),
                "url" => s(format!(
                    "{}/{}/{}/pull/{n}/commits/{}",
                    self.web(),
                    r.owner,
                    r.name,
                    c.sha
                )),
                _ => unknown(),
            },
            Obj::GitActor(p) => match field {
                "name" => s(p.name.clone()),
                "email" => s(p.email.clone()),
                "date" => s(p.date.clone()),
                // Commit e-mails are not matched to accounts here.
                "user" => Ok(Out::Null),
                _ => unknown(),
            },
            Obj::File(f) => match field {
                "path" => s(f.path.clone()),
                "additions" => s(f.additions),
                "deletions" => s(f.deletions),
                "changeType" => s(f.change),
                _ => unknown(),
            },
            Obj::ReactionGroup(content) => match field {
                "content" => s(*content),
                "users" => self.connection(args, "ReactingUserConnection", Vec::new()),
                "viewerHasReacted" => s(false),
                _ => unknown(),
            },
            Obj::Conn(c) => match field {
                "nodes" => Ok(Out::List(
                    c.items.iter().map(|(o, _)| Out::Obj(o.shallow())).collect(),
                )),
                "edges" => Ok(Out::List(
                    c.items
                        .iter()
                        .map(|(o, cur)| {
                            Out::Obj(Obj::Edge(c.edge, Box::new(o.shallow()), cur.clone()))
                        })
                        .collect(),
                )),
                "totalCount" | "issueCount" => s(c.total),
                "pageInfo" => Ok(Out::Obj(Obj::PageInfo(PageInfo {
                    start: c.page.start.clone(),
                    end: c.page.end.clone(),
                    has_next: c.page.has_next,
                    has_prev: c.page.has_prev,
                }))),
                _ => unknown(),
            },
            Obj::Edge(_, node, cur) => match field {
                "node" => Ok(Out::Obj(node.shallow())),
                "cursor" => s(cur.clone()),
                _ => unknown(),
            },
            Obj::PageInfo(p) => match field {
                "startCursor" => s(p.start.clone()),
                "endCursor" => s(p.end.clone()),
                "hasNextPage" => s(p.has_next),
                "hasPreviousPage" => s(p.has_prev),
                _ => unknown(),
            },
            Obj::Type(t) => introspect_type(t, field, args).unwrap_or_else(unknown),
            Obj::Field(f) => match field {
                "name" => s(f.name.clone()),
                "description" => Ok(Out::Null),
                "args" => Ok(Out::List(
                    f.args
                        .iter()
                        .map(|a| Out::Obj(Obj::InputValue(a)))
                        .collect(),
                )),
                "type" => Ok(Out::Obj(Obj::Type(f.ty.clone()))),
                "isDeprecated" => s(f.deprecated.is_some()),
                "deprecationReason" => s(f.deprecated.clone()),
                _ => unknown(),
            },
            Obj::InputValue(a) => match field {
                "name" => s(a.name.clone()),
                "description" => Ok(Out::Null),
                "type" => Ok(Out::Obj(Obj::Type(a.ty.clone()))),
                "defaultValue" => s(a.default.as_ref().map(ToString::to_string)),
                _ => unknown(),
            },
            Obj::EnumValue(e) => match field {
                "name" => s(e.name.clone()),
                "description" => Ok(Out::Null),
                "isDeprecated" => s(e.deprecated.is_some()),
                "deprecationReason" => s(e.deprecated.clone()),
                _ => unknown(),
            },
        }
    }

    // ------------------------------------------------------------ Query

    fn query(&self, field: &str, args: &Args) -> Option<R<Out<'a>>> {
        Some(match field {
            "repository" => {
                let owner = args.str("owner").unwrap_or("");
                let name = args.str("name").unwrap_or("");
                match self.st.repos.get(&repo_key(owner, name)) {
                    Some(r) if self.token.reaches(&r.owner, &r.name) => Ok(Out::Obj(Obj::Repo(r))),
                    _ => Err(FieldError::not_found(format!(
                        "Could not resolve to a Repository with the name '{owner}/{name}'."
                    ))),
                }
            }
            "node" => self.node(args.str("id").unwrap_or("")),
            "nodes" => args
                .strs("ids")
                .unwrap_or_default()
                .iter()
                .map(|id| self.node(id))
                .collect::<R<Vec<_>>>()
                .map(Out::List),
            "viewer" => Ok(self.account(Account {
                kind: AccountKind::User,
                login: self.token.actor.login.clone(),
                id: self.token.actor.id,
            })),
            "search" => super::search::search(self, args),
            "__type" => Ok(match args.str("name").and_then(|n| schema().get(n)) {
                Some(t) => Out::Obj(Obj::Type(TypeRef::Named(t.name.clone()))),
                None => Out::Null,
            }),
            _ => return None,
        })
    }

    /// `node(id:)` for the ids REST hands out as `node_id`.
    fn node(&self, id: &str) -> R<Out<'a>> {
        let missing = || {
            FieldError::not_found(format!(
                "Could not resolve to a node with the global id of '{id}'."
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(missing)?;
        let rest = raw.strip_prefix("0:").ok_or_else(missing)?;
        let split = rest
            .find(|c: char| c.is_ascii_digit())
            .ok_or_else(missing)?;
        let (kind, num) = rest.split_at(split);
        let num: u64 = num.parse().map_err(|_| missing())?;
        for r in self.st.repos.values() {
            if !self.token.reaches(&r.owner, &r.name) {
                continue;
            }
            match kind {
                "Repository" if r.id == num => return Ok(Out::Obj(Obj::Repo(r))),
                "Issue" | "PullRequest" => {
                    let found = r.items.iter().find(|i| {
                        if kind == "Issue" {
                            i.id == num
                        } else {
                            i.pr_id == num && i.pull.is_some()
                        }
                    });
                    if let Some(i) = found {
                        self.can_read(i)?;
                        return Ok(Out::Obj(Obj::Item(r, i)));
                    }
                }
                "IssueComment" => {
                    if let Some(c) = r.comments.iter().find(|c| c.id == num) {
                        if let Some(i) = r.items.iter().find(|i| i.number == c.issue) {
                            self.can_read(i)?;
                        }
                        return Ok(Out::Obj(Obj::Comment(r, c)));
                    }
                }
                _ => {}
            }
        }
        Err(missing())
    }

    // ------------------------------------------------------------ Repository

    fn repository(&self, r: &'a Repo, field: &str, args: &Args) -> Option<R<Out<'a>>> {
        let web = format!("{}/{}/{}", self.web(), r.owner, r.name);
        let number = || args.int("number").unwrap_or(0);
        let pushed = || {
            git(&r.path, &["log", "-1", "--all", "--format=%ct"])
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(iso)
        };
        Some(match field {
            "id" => s(node_id("Repository", r.id)),
            "databaseId" => s(r.id),
            "name" => s(r.name.clone()),
            "nameWithOwner" => s(format!("{}/{}", r.owner, r.name)),
            "owner" => Ok(self.account(Account::organization(&r.owner))),
            "url" => s(web),
            "resourcePath" => s(format!("/{}/{}", r.owner, r.name)),
            "description" => Ok(Out::Null),
            "isPrivate" => s(true),
            "visibility" => s("PRIVATE"),
            "isArchived" | "isFork" | "deleteBranchOnMerge" => s(false),
            "mergeCommitAllowed" | "squashMergeAllowed" | "rebaseMergeAllowed" => s(true),
            "hasIssuesEnabled" => s(true),
            "isEmpty" => s(list_refs(&r.path).is_empty()),
            "createdAt" => s(iso(r.created_at)),
            "pushedAt" => s(pushed()),
            "updatedAt" => s(pushed().unwrap_or_else(|| iso(r.created_at))),
            "viewerPermission" => s(if self.token.installation.is_none() {
                "ADMIN"
            } else if self.token.can("contents", true) {
                "WRITE"
            } else {
                "READ"
            }),
            "defaultBranchRef" => Ok(self.ref_out(r, &format!("refs/heads/{}", r.default_branch))),
            "ref" => {
                let q = args.str("qualifiedName").unwrap_or("");
                let refs = list_refs(&r.path);
                let found = [
                    q.to_owned(),
                    format!("refs/heads/{q}"),
                    format!("refs/tags/{q}"),
                ]
                .into_iter()
                .find(|c| c.starts_with("refs/") && refs.iter().any(|x| &x.0 == c));
                Ok(match found {
                    Some(full) => self.ref_out(r, &full),
                    None => Out::Null,
                })
            }
            "issue" => {
                let n = number();
                match r
                    .items
                    .iter()
                    .find(|i| i.number as i64 == n && i.pull.is_none())
                {
                    Some(i) => self.can_read(i).map(|()| Out::Obj(Obj::Item(r, i))),
                    None => Err(FieldError::not_found(format!(
                        "Could not resolve to an Issue with the number of {n}."
                    ))),
                }
            }
            "pullRequest" => {
                let n = number();
                match r
                    .items
                    .iter()
                    .find(|i| i.number as i64 == n && i.pull.is_some())
                {
                    Some(i) => self.can_read(i).map(|()| Out::Obj(Obj::Item(r, i))),
                    None => Err(FieldError::not_found(format!(
                        "Could not resolve to a PullRequest with the number of {n}."
                    ))),
                }
            }
            "issueOrPullRequest" => {
                let n = number();
                match r.items.iter().find(|i| i.number as i64 == n) {
                    Some(i) => self.can_read(i).map(|()| Out::Obj(Obj::Item(r, i))),
                    None => Err(FieldError::not_found(format!(
                        "Could not resolve to an issue or pull request with the number of {n}."
                    ))),
                }
            }
            "issues" => self.issues(r, args, false),
            "pullRequests" => self.issues(r, args, true),
            "labels" => {
                let mut labels: Vec<_> = r.labels.values().collect();
                labels.sort_by_key(|l| l.id);
                let all = labels
                    .into_iter()
                    .map(|l| Obj::Label(r, l.name.clone()))
                    .collect();
                self.connection(args, "LabelConnection", all)
            }
            _ => return None,
        })
    }

    fn ref_out(&self, r: &'a Repo, full: &str) -> Out<'a> {
        match list_refs(&r.path).into_iter().find(|x| x.0 == full) {
            Some((name, sha, _)) => Out::Obj(Obj::Ref(r, name, sha)),
            None => Out::Null,
        }
    }

    /// `Repository.issues` and `Repository.pullRequests`.
    fn issues(&self, r: &'a Repo, args: &Args, pulls: bool) -> R<Out<'a>> {
        self.need(if pulls { "pull_requests" } else { "issues" })?;
        let filter = args.get("filterBy").and_then(Value::as_object);
        let fstr = |k: &str| filter.and_then(|f| f.get(k)).and_then(Value::as_str);
        let mut states = args.strs("states");
        if let Some(fs) = filter
            .and_then(|f| f.get("states"))
            .and_then(Value::as_array)
        {
            let fs: Vec<String> = fs
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            states = Some(match states {
                Some(s) => s.into_iter().filter(|x| fs.contains(x)).collect(),
                None => fs,
            });
        }
        let since = fstr("since")
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .map_err(|_| {
                        FieldError::plain(format!(
                            "Argument 'since' on InputObject 'IssueFilters' has an invalid value (\"{s}\"). Expected type 'DateTime'."
                        ))
                    })
            })
            .transpose()?;
        let mut list: Vec<&Item> = r
            .items
            .iter()
            .filter(|i| i.pull.is_some() == pulls)
            .filter(|i| {
                states
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == item_state(i)))
            })
            .filter(|i| {
                args.str("baseRefName")
                    .is_none_or(|b| i.pull.as_ref().is_some_and(|p| p.base_ref == b))
            })
            .filter(|i| {
                args.str("headRefName")
                    .is_none_or(|h| i.pull.as_ref().is_some_and(|p| p.head_ref == h))
            })
            .filter(|i| match fstr("assignee") {
                None => true,
                Some("*") => !i.assignees.is_empty(),
                Some(a) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
            })
            .filter(|i| fstr("createdBy").is_none_or(|a| same_login(&i.user, a)))
            .filter(|i| fstr("mentioned").is_none_or(|m| mentions(r, i, m)))
            .filter(|i| since.is_none_or(|t| i.updated_at >= t))
            .collect();
        order(&mut list, r, args.get("orderBy"));
        let ty = if pulls {
            "PullRequestConnection"
        } else {
            "IssueConnection"
        };
        let all = list.into_iter().map(|i| Obj::Item(r, i)).collect();
        self.connection(args, ty, all)
    }

    // ------------------------------------------------------------ Issue, PullRequest

    fn item(&self, r: &'a Repo, i: &'a Item, field: &str, args: &Args) -> Option<R<Out<'a>>> {
        let web = format!("{}/{}/{}", self.web(), r.owner, r.name);
        let kind = if i.pull.is_some() { "pull" } else { "issues" };
        let common = match field {
            "id" => Some(s(match i.pull {
                Some(_) => node_id("PullRequest", i.pr_id),
                None => node_id("Issue", i.id),
            })),
            "databaseId" => Some(s(if i.pull.is_some() { i.pr_id } else { i.id })),
            "number" => Some(s(i.number)),
            "title" => Some(s(i.title.clone())),
            "body" => Some(s(i.body.clone().unwrap_or_default())),
            "url" => Some(s(format!("{web}/{kind}/{}", i.number))),
            "resourcePath" => Some(s(format!("/{}/{}/{kind}/{}", r.owner, r.name, i.number))),
            "state" => Some(s(item_state(i))),
            "closed" => Some(s(i.state == "closed")),
            "closedAt" => Some(s(i.closed_at.map(iso))),
            "createdAt" => Some(s(iso(i.created_at))),
            "updatedAt" => Some(s(iso(i.updated_at))),
            "lastEditedAt" | "activeLockReason" | "milestone" => Some(Ok(Out::Null)),
            "includesCreatedEdit" | "locked" => Some(s(false)),
            "author" => Some(Ok(self.account(Account::of(&i.user)))),
            "authorAssociation" => Some(s("MEMBER")),
            "viewerDidAuthor" => Some(s(i.user.login == self.token.actor.login)),
            "assignees" => {
                let all = i
                    .assignees
                    .iter()
                    .map(|a| Obj::Account(Account::user(a)))
                    .collect();
                Some(self.connection(args, "UserConnection", all))
            }
            "labels" => {
                let all = i.labels.iter().map(|l| Obj::Label(r, l.clone())).collect();
                Some(self.connection(args, "LabelConnection", all))
            }
            "projectCards" => Some(self.connection(args, "ProjectCardConnection", Vec::new())),
            "reactionGroups" => Some(Ok(reaction_groups())),
            "comments" => {
                let all = r
                    .comments
                    .iter()
                    .filter(|c| c.issue == i.number)
                    .map(|c| Obj::Comment(r, c))
                    .collect();
                Some(self.connection(args, "IssueCommentConnection", all))
            }
            "repository" => Some(Ok(Out::Obj(Obj::Repo(r)))),
            _ => None,
        };
        if common.is_some() {
            return common;
        }
        let Some(p) = &i.pull else {
            return match field {
                "stateReason" => Some(s(i.state_reason.as_deref().map(|reason| {
                    match (reason, args.bool("enableDuplicate").unwrap_or(false)) {
                        ("duplicate", false) => "NOT_PLANNED".to_owned(),
                        (other, _) => other.to_ascii_uppercase(),
                    }
                }))),
                _ => None,
            };
        };
        let head = || {
            branch_sha(&r.path, &p.head_ref).ok_or_else(|| {
                FieldError::plain(format!(
                    "the sandbox does not know the head of pull request #{}: branch '{}' is gone",
                    i.number, p.head_ref
                ))
            })
        };
        let base = || {
            branch_sha(&r.path, &p.base_ref).ok_or_else(|| {
                FieldError::plain(format!(
                    "the sandbox does not know the base of pull request #{}: branch '{}' is gone",
                    i.number, p.base_ref
                ))
            })
        };
        let files = || -> R<Vec<Value>> {
            let (b, h) = (base()?, head()?);
            let mb = git(&r.path, &["merge-base", &b, &h])
                .ok()
                .map(|s| s.trim().to_owned());
            Ok(diff_files(
                self.ctx,
                &r.path,
                &r.owner,
                &r.name,
                mb.as_deref(),
                &h,
            ))
        };
        let sum = |k: &str| -> R<Out<'a>> {
            let n: u64 = files()?.iter().map(|f| f[k].as_u64().unwrap_or(0)).sum();
            s(n)
        };
        let mergeable = || -> Option<bool> {
            let (b, h) = (base().ok()?, head().ok()?);
            Some(git(&r.path, &["merge-tree", "--write-tree", &b, &h]).is_ok())
        };
        Some(match field {
            "isDraft" => s(p.draft),
            "baseRefName" => s(p.base_ref.clone()),
            "headRefName" => s(p.head_ref.clone()),
            "baseRefOid" => base().map(|x| Out::Scalar(json!(x))),
            "headRefOid" => head().map(|x| Out::Scalar(json!(x))),
            "baseRef" => Ok(self.ref_out(r, &format!("refs/heads/{}", p.base_ref))),
            "headRef" => Ok(self.ref_out(r, &format!("refs/heads/{}", p.head_ref))),
            "headRepository" => Ok(Out::Obj(Obj::Repo(r))),
            "headRepositoryOwner" => Ok(self.account(Account::organization(&r.owner))),
            "isCrossRepository" | "merged" => s(false),
            "maintainerCanModify" => s(p.maintainer_can_modify),
            "mergedAt"
            | "mergedBy"
            | "mergeCommit"
            | "potentialMergeCommit"
            | "reviewDecision"
            | "autoMergeRequest" => Ok(Out::Null),
            "mergeable" => s(match mergeable() {
                None => "UNKNOWN",
                Some(true) => "MERGEABLE",
                Some(false) => "CONFLICTING",
            }),
            // As REST's `mergeable_state`.
            "mergeStateStatus" => s(match (mergeable(), p.draft) {
                (None, _) => "UNKNOWN",
                (Some(false), _) => "DIRTY",
                (Some(true), true) => "DRAFT",
                (Some(true), false) => "CLEAN",
            }),
            "additions" => sum("additions"),
            "deletions" => sum("deletions"),
            "changedFiles" => files().map(|f| Out::Scalar(json!(f.len()))),
            "files" => files().and_then(|f| {
                let all = f.iter().map(|f| Obj::File(changed_file(f))).collect();
                self.connection(args, "PullRequestChangedFileConnection", all)
            }),
            "commits" => (|| {
                let (b, h) = (base()?, head()?);
                let range = format!("{b}..{h}");
                // Counted; only the commits of the page asked for are read.
                let total = usize::try_from(count(&r.path, &range)).unwrap_or(0);
                self.connection_of(args, "PullRequestCommitConnection", total, |start, end| {
                    git(&r.path, &["rev-list", "--reverse", &range])
                        .unwrap_or_default()
                        .lines()
                        .skip(start)
                        .take(end - start)
                        .filter_map(|sha| commit_info(&r.path, sha))
                        .map(|c| Obj::PrCommit(r, i.number, Rc::new(c)))
                        .collect()
                })
            })(),
            "reviewRequests" => self.connection(args, "ReviewRequestConnection", Vec::new()),
            "reviews" | "latestReviews" => {
                self.connection(args, "PullRequestReviewConnection", Vec::new())
            }
            _ => return None,
        })
    }

    fn comment(&self, r: &'a Repo, c: &'a Comment, field: &str) -> Option<R<Out<'a>>> {
        let kind = if r
            .items
            .iter()
            .any(|i| i.number == c.issue && i.pull.is_some())
        {
            "pull"
        } else {
            "issues"
        };
        Some(match field {
            "id" => s(node_id("IssueComment", c.id)),
            "databaseId" => s(c.id),
            "author" => Ok(self.account(Account::of(&c.user))),
            "authorAssociation" => s("MEMBER"),
            "body" => s(c.body.clone()),
            "createdAt" | "updatedAt" => s(iso(c.created_at)),
            "lastEditedAt" | "minimizedReason" => Ok(Out::Null),
            "includesCreatedEdit" | "isMinimized" => s(false),
            "reactionGroups" => Ok(reaction_groups()),
            "url" => s(format!(
                "{}/{}/{}/{kind}/{}#issuecomment-{}",
                self.web(),
                r.owner,
                r.name,
                c.issue,
                c.id
            )),
            "viewerDidAuthor" => s(c.user.login == self.token.actor.login),
            _ => return None,
        })
    }

    fn account_field(&self, a: &Account, field: &str, args: &Args) -> Option<R<Out<'a>>> {
        let path = match a.kind {
            AccountKind::Bot => format!("/apps/{}", a.graphql_login()),
            _ => format!("/{}", a.login),
        };
        Some(match field {
            "id" => s(node_id("User", a.id)),
            "databaseId" => s(a.id),
            "login" => s(a.graphql_login().to_owned()),
            "name" => Ok(Out::Null),
            "resourcePath" => s(path),
            "url" => s(format!("{}{path}", self.web())),
            "avatarUrl" => s(match args.int("size") {
                Some(n) => format!("{}/avatars/u/{}?s={n}", self.web(), a.id),
                None => format!("{}/avatars/u/{}", self.web(), a.id),
            }),
            _ => return None,
        })
    }

    fn label(&self, r: &'a Repo, name: &str, field: &str) -> Option<R<Out<'a>>> {
        let l = r.labels.get(&name.to_ascii_lowercase());
        Some(match field {
            "id" => s(node_id("Label", l.map_or_else(|| fnv(name), |l| l.id))),
            "name" => s(l.map_or(name, |l| l.name.as_str()).to_owned()),
            "color" => s(l.map_or("ededed", |l| l.color.as_str()).to_owned()),
            "description" => Ok(Out::Null),
            "isDefault" => s(false),
            "url" => s(format!(
                "{}/{}/{}/labels/{}",
                self.web(),
                r.owner,
                r.name,
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
            )),
            _ => return None,
        })
    }

    fn git_ref(&self, r: &'a Repo, full: &str, sha: &str, field: &str) -> Option<R<Out<'a>>> {
        let prefix = ["refs/heads/", "refs/tags/"]
            .into_iter()
            .find(|p| full.starts_with(p))
            .unwrap_or("refs/");
        Some(match field {
            "id" => s(node_id("Ref", fnv(full))),
            "name" => s(full.strip_prefix(prefix).unwrap_or(full).to_owned()),
            "prefix" => s(prefix),
            "target" => match commit_info(&r.path, sha) {
                Some(c) => Ok(Out::Obj(Obj::Commit(r, Rc::new(c)))),
                None => Err(FieldError::plain(format!(
                    "{full} points at a tag object, and the sandbox's schema has no Tag type ({SUBSET_NOTE})"
                ))),
            },
            _ => return None,
        })
    }

    fn commit(&self, r: &'a Repo, c: &CommitInfo, field: &str, args: &Args) -> Option<R<Out<'a>>> {
        let message = c.message.trim_end_matches('\n');
        let (headline, body) = message.split_once('\n').unwrap_or((message, ""));
        let stat = |k: &str| -> R<Out<'a>> {
            let files = diff_files(
                self.ctx,
                &r.path,
                &r.owner,
                &r.name,
                c.parents.first().map(String::as_str),
                &c.sha,
            );
            s(files
                .iter()
                .map(|f| f[k].as_u64().unwrap_or(0))
                .sum::<u64>())
        };
        Some(match field {
            "id" => s(node_id("Commit", fnv(&c.sha))),
            "oid" => s(c.sha.clone()),
            "abbreviatedOid" => s(c.sha.chars().take(7).collect::<String>()),
            "message" => s(message.to_owned()),
            "messageHeadline" => s(headline.to_owned()),
            "messageBody" => s(body.trim_start_matches('\n').to_owned()),
            "committedDate" => s(c.committer.date.clone()),
            "authoredDate" => s(c.author.date.clone()),
            "author" => Ok(Out::Obj(Obj::GitActor(c.author.clone()))),
            "committer" => Ok(Out::Obj(Obj::GitActor(c.committer.clone()))),
            "authors" => self.connection(
                args,
                "GitActorConnection",
                vec![Obj::GitActor(c.author.clone())],
            ),
            "url" => s(format!(
                "{}/{}/{}/commit/{}",
                self.web(),
                r.owner,
                r.name,
                c.sha
            )),
            "additions" => stat("additions"),
            "deletions" => stat("deletions"),
            // No commit statuses or check runs in the sandbox.
            "statusCheckRollup" => Ok(Out::Null),
            _ => return None,
        })
    }
}

impl<'a> Obj<'a> {
    /// A copy for handing out from a connection (cheap: references and
    /// small values).
    fn shallow(&self) -> Obj<'a> {
        match self {
            Obj::Query => Obj::Query,
            Obj::Repo(r) => Obj::Repo(r),
            Obj::Item(r, i) => Obj::Item(r, i),
            Obj::Comment(r, c) => Obj::Comment(r, c),
            Obj::Account(a) => Obj::Account(a.clone()),
            Obj::Label(r, l) => Obj::Label(r, l.clone()),
            Obj::Ref(r, n, s) => Obj::Ref(r, n.clone(), s.clone()),
            Obj::Commit(r, c) => Obj::Commit(r, c.clone()),
            Obj::PrCommit(r, n, c) => Obj::PrCommit(r, *n, c.clone()),
            Obj::GitActor(p) => Obj::GitActor(p.clone()),
            Obj::File(f) => Obj::File(ChangedFile {
                path: f.path.clone(),
                additions: f.additions,
                deletions: f.deletions,
                change: f.change,
            }),
            Obj::ReactionGroup(c) => Obj::ReactionGroup(c),
            Obj::Conn(_) | Obj::Edge(..) | Obj::PageInfo(_) => Obj::Query,
            Obj::Type(t) => Obj::Type(t.clone()),
            Obj::Field(f) => Obj::Field(f),
            Obj::InputValue(v) => Obj::InputValue(v),
            Obj::EnumValue(v) => Obj::EnumValue(v),
        }
    }
}

fn reaction_groups() -> Out<'static> {
    Out::List(
        REACTIONS
            .iter()
            .map(|c| Out::Obj(Obj::ReactionGroup(c)))
            .collect(),
    )
}

/// `OPEN`/`CLOSED` (the sandbox merges nothing, so never `MERGED`).
pub(super) fn item_state(i: &Item) -> &'static str {
    if i.state == "closed" {
        "CLOSED"
    } else {
        "OPEN"
    }
}

/// Whether `login` names the actor (the REST or the GraphQL spelling).
pub(super) fn same_login(a: &Actor, login: &str) -> bool {
    a.login.eq_ignore_ascii_case(login)
        || (a.bot
            && a.login
                .trim_end_matches("[bot]")
                .eq_ignore_ascii_case(login))
}

/// Whether `@login` appears in the item's body or comments.
pub(super) fn mentions(r: &Repo, i: &Item, login: &str) -> bool {
    let needle = format!("@{}", login.to_ascii_lowercase());
    let has = |text: &str| {
        let t = text.to_ascii_lowercase();
        t.match_indices(&needle).any(|(at, _)| {
            let after = t[at + needle.len()..].chars().next();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    i.body.as_deref().is_some_and(has)
        || r.comments
            .iter()
            .any(|c| c.issue == i.number && has(&c.body))
}

/// Sorts by `IssueOrder` (creation, ascending, when none is given).
pub(super) fn order(list: &mut [&Item], r: &Repo, order_by: Option<&Value>) {
    let field = order_by
        .and_then(|o| o.get("field"))
        .and_then(Value::as_str)
        .unwrap_or("CREATED_AT");
    let desc = order_by
        .and_then(|o| o.get("direction"))
        .and_then(Value::as_str)
        == Some("DESC");
    let comments = |i: &Item| r.comments.iter().filter(|c| c.issue == i.number).count();
    list.sort_by(|a, b| {
        let o = match field {
            "UPDATED_AT" => a.updated_at.cmp(&b.updated_at),
            "COMMENTS" => comments(a).cmp(&comments(b)),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.number.cmp(&b.number));
        if desc { o.reverse() } else { o }
    });
}

fn changed_file(f: &Value) -> ChangedFile {
    ChangedFile {
        path: f["filename"].as_str().unwrap_or("").to_owned(),
        additions: f["additions"].as_u64().unwrap_or(0),
        deletions: f["deletions"].as_u64().unwrap_or(0),
        change: match f["status"].as_str().unwrap_or("") {
            "added" => "ADDED",
            "removed" => "DELETED",
            "renamed" => "RENAMED",
            "copied" => "COPIED",
            "changed" => "CHANGED",
            _ => "MODIFIED",
        },
    }
}

// ---------------------------------------------------------------- introspection

fn list_of<'a>(items: Vec<Obj<'a>>) -> Out<'a> {
    Out::List(items.into_iter().map(Out::Obj).collect())
}

fn introspect_type<'a>(t: &TypeRef, field: &str, args: &Args) -> Option<R<Out<'a>>> {
    let def = match t {
        TypeRef::Named(n) => schema().get(n),
        _ => None,
    };
    let include_deprecated = args.bool("includeDeprecated").unwrap_or(false);
    Some(match (field, t) {
        ("kind", TypeRef::List(_)) => s("LIST"),
        ("kind", TypeRef::NonNull(_)) => s("NON_NULL"),
        ("kind", _) => s(def.map_or("SCALAR", |d| d.kind.introspection_name())),
        ("name", TypeRef::Named(n)) => s(n.clone()),
        ("ofType", TypeRef::List(inner) | TypeRef::NonNull(inner)) => {
            Ok(Out::Obj(Obj::Type((**inner).clone())))
        }
        ("name" | "ofType" | "description", _) => Ok(Out::Null),
        ("fields", _) => Ok(match def {
            Some(d) if matches!(d.kind, Kind::Object | Kind::Interface) => list_of(
                d.fields
                    .iter()
                    .filter(|f| include_deprecated || f.deprecated.is_none())
                    .map(Obj::Field)
                    .collect(),
            ),
            _ => Out::Null,
        }),
        ("interfaces", _) => Ok(match def {
            Some(d) if matches!(d.kind, Kind::Object | Kind::Interface) => list_of(
                d.interfaces
                    .iter()
                    .map(|i| Obj::Type(TypeRef::Named(i.clone())))
                    .collect(),
            ),
            _ => Out::Null,
        }),
        ("possibleTypes", _) => Ok(match def {
            Some(d) if matches!(d.kind, Kind::Interface | Kind::Union) => list_of(
                schema()
                    .possible_types(&d.name)
                    .into_iter()
                    .map(|n| Obj::Type(TypeRef::Named(n.to_owned())))
                    .collect(),
            ),
            _ => Out::Null,
        }),
        ("enumValues", _) => Ok(match def {
            Some(d) if d.kind == Kind::Enum => list_of(
                d.values
                    .iter()
                    .filter(|v| include_deprecated || v.deprecated.is_none())
                    .map(Obj::EnumValue)
                    .collect(),
            ),
            _ => Out::Null,
        }),
        ("inputFields", _) => Ok(match def {
            Some(d) if d.kind == Kind::InputObject => {
                list_of(d.inputs.iter().map(Obj::InputValue).collect())
            }
            _ => Out::Null,
        }),
        _ => return None,
    })
}
