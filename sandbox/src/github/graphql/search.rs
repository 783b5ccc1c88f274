//! `search(type: ISSUE, query: …)`: GitHub's issue and pull request search
//! syntax, the qualifiers gh builds (`repo:`, `is:`, `type:`, `state:`,
//! `label:`, `author:`, `assignee:`, `mentions:`, `draft:`, `base:`,
//! `head:`, `no:`, `sort:`) and plain words (matched, case-insensitively,
//! against titles, bodies and comments). Anything else is an error naming
//! it, never a result set that silently ignored part of the query.

use serde_json::Value;

use super::exec::SUBSET_NOTE;
use super::resolve::{Args, FieldError, Obj, Out, Resolver, mentions, same_login};
use crate::github::{Item, Repo};

/// Splits on blanks, keeping `"quoted phrases"` (and `label:"a b"`) whole.
fn words(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Default)]
struct Query {
    repos: Vec<String>,
    kind: Option<bool>,
    state: Option<String>,
    merged: Option<bool>,
    draft: Option<bool>,
    labels: Vec<String>,
    no_label: bool,
    no_assignee: bool,
    authors: Vec<String>,
    assignees: Vec<String>,
    mentions: Vec<String>,
    base: Option<String>,
    head: Option<String>,
    milestones: Vec<String>,
    text: Vec<String>,
    sort: Option<(String, bool)>,
}

fn parse(q: &str, me: &str) -> Result<Query, String> {
    let mut out = Query::default();
    let who = |v: &str| {
        if v == "@me" {
            me.to_owned()
        } else {
            v.to_owned()
        }
    };
    for w in words(q) {
        let Some((k, v)) = w.split_once(':') else {
            out.text.push(w.to_ascii_lowercase());
            continue;
        };
        match (
            k.to_ascii_lowercase().as_str(),
            v.to_ascii_lowercase().as_str(),
        ) {
            ("repo", _) => out.repos.push(v.to_ascii_lowercase()),
            ("is" | "type", "issue") => out.kind = Some(false),
            ("is" | "type", "pr" | "pull-request") => out.kind = Some(true),
            ("is" | "state", s @ ("open" | "closed")) => out.state = Some(s.to_owned()),
            ("is", "merged") => out.merged = Some(true),
            ("is", "unmerged") => out.merged = Some(false),
            ("is", "draft") => out.draft = Some(true),
            ("draft", "true") => out.draft = Some(true),
            ("draft", "false") => out.draft = Some(false),
            ("label", _) => out.labels.push(v.to_owned()),
            ("no", "label") => out.no_label = true,
            ("no", "assignee") => out.no_assignee = true,
            ("author", _) => out.authors.push(who(v)),
            ("assignee", _) => out.assignees.push(who(v)),
            ("mentions", _) => out.mentions.push(who(v)),
            ("base", _) => out.base = Some(v.to_owned()),
            ("head", _) => out.head = Some(v.to_owned()),
            ("milestone", _) => out.milestones.push(v.to_owned()),
            ("sort", s) => {
                let (field, dir) = s.rsplit_once('-').unwrap_or((s, "desc"));
                if !matches!(field, "created" | "updated" | "comments")
                    || !matches!(dir, "asc" | "desc")
                {
                    return Err(format!("sort:{v}"));
                }
                out.sort = Some((field.to_owned(), dir == "asc"));
            }
            _ => return Err(w.clone()),
        }
    }
    Ok(out)
}

fn matches(q: &Query, r: &Repo, i: &Item) -> bool {
    let full = format!("{}/{}", r.owner, r.name).to_ascii_lowercase();
    let text = |t: &str| {
        let t = t.to_ascii_lowercase();
        i.title.to_ascii_lowercase().contains(&t)
            || i.body
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains(&t)
            || r.comments
                .iter()
                .any(|c| c.issue == i.number && c.body.to_ascii_lowercase().contains(&t))
    };
    let pull = i.pull.as_ref();
    (q.repos.is_empty() || q.repos.contains(&full))
        && q.kind.is_none_or(|k| k == pull.is_some())
        && q.state.as_deref().is_none_or(|s| i.state == s)
        // Nothing is ever merged in the sandbox.
        && q.merged.is_none_or(|m| !m && pull.is_some())
        && q.draft.is_none_or(|d| pull.is_some_and(|p| p.draft == d))
        && q.labels.iter().all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
        && (!q.no_label || i.labels.is_empty())
        && (!q.no_assignee || i.assignees.is_empty())
        && q.authors.iter().all(|a| same_login(&i.user, a))
        && q.assignees.iter().all(|a| i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)))
        && q.mentions.iter().all(|m| mentions(r, i, m))
        && q.base.as_deref().is_none_or(|b| pull.is_some_and(|p| p.base_ref == b))
        && q.head.as_deref().is_none_or(|h| pull.is_some_and(|p| p.head_ref == h))
        // The sandbox has no milestones.
        && q.milestones.is_empty()
        && q.text.iter().all(|t| text(t))
}

pub(super) fn search<'a>(res: &Resolver<'a>, args: &Args) -> Result<Out<'a>, FieldError> {
    let kind = args.map.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "ISSUE" {
        return Err(FieldError::plain(format!(
            "search(type: {kind}) is not implemented: only ISSUE ({SUBSET_NOTE})"
        )));
    }
    let text = args.map.get("query").and_then(Value::as_str).unwrap_or("");
    let q = parse(text, &res.token.actor.login).map_err(|w| {
        FieldError::plain(format!(
            "the expedite sandbox's search does not understand '{w}' in \"{text}\" (it knows repo:, is:, type:, state:, label:, no:label, no:assignee, author:, assignee:, mentions:, draft:, base:, head:, milestone:, sort: and plain words)"
        ))
    })?;
    let mut found: Vec<(&'a Repo, &'a Item)> = Vec::new();
    for r in res.st.repos.values() {
        if !res.token.reaches(&r.owner, &r.name) {
            continue;
        }
        for i in &r.items {
            let perm = if i.pull.is_some() {
                "pull_requests"
            } else {
                "issues"
            };
            if res.token.can(perm, false) && matches(&q, r, i) {
                found.push((r, i));
            }
        }
    }
    let (field, asc) = q.sort.clone().unwrap_or(("created".to_owned(), false));
    found.sort_by(|(ra, a), (rb, b)| {
        let comments =
            |r: &Repo, i: &Item| r.comments.iter().filter(|c| c.issue == i.number).count();
        let o = match field.as_str() {
            "updated" => a.updated_at.cmp(&b.updated_at),
            "comments" => comments(ra, a).cmp(&comments(rb, b)),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.number.cmp(&b.number));
        if asc { o } else { o.reverse() }
    });
    let all = found.into_iter().map(|(r, i)| Obj::Item(r, i)).collect();
    res.search_connection(args, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_gh_builds() {
        let q = parse(
            r#"draft:true label:"needs review" label:incident repo:contoso/payments state:open type:pr"#,
            "me",
        )
        .unwrap();
        assert_eq!(q.labels, ["needs review", "incident"]);
        assert_eq!(q.kind, Some(true));
        assert_eq!(q.draft, Some(true));
        assert_eq!(q.repos, ["contoso/payments"]);
        assert_eq!(parse("author:@me", "me").unwrap().authors, ["me"]);
        assert_eq!(parse("in:title x", "me").err().as_deref(), Some("in:title"));
    }
}
