//! git smart-HTTP on `github.test`: GitHub's auth rules in front of
//! `git http-backend`, spawned per request as a CGI with the request body
//! streamed in and the response streamed out (pushes are buffered so the
//! push report can carry GitHub's refusal reasons, see [`rewrite_report`]).
//! The process is bounded in time and killed when the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::auth::{self, Cred};
use super::{GIT_HOST, repo_key};
use crate::log::RequestRecord;
use crate::respond::{LazyBody, Padding, Resp};
use crate::server::Shared;

/// Longest one `git http-backend` run may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTPS listener's response body: a ready buffer, a stream fed by a
/// `git http-backend` process, or padding generated as it is read (the
/// `huge_body` faults).
pub(crate) enum Body {
    Full(Full<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, BoxError>>),
    Lazy(Padding),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Full(f) => Pin::new(f)
                .poll_frame(cx)
                .map_err(|e: Infallible| match e {}),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
            Body::Lazy(p) => Poll::Ready(p.next_chunk().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(f) => f.is_end_stream(),
            Body::Stream(_) => false,
            Body::Lazy(p) => p.is_done(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(f) => f.size_hint(),
            Body::Stream(_) => hyper::body::SizeHint::default(),
            Body::Lazy(p) if p.exact => hyper::body::SizeHint::with_exact(p.total()),
            Body::Lazy(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// Every other surface's response, as the listener's body type (a
/// [`LazyBody`] marker turns into its generated body).
pub(crate) fn full_body(mut r: Resp) -> http::Response<Body> {
    if let Some(lazy) = r.extensions_mut().remove::<LazyBody>() {
        return r.map(|_| Body::Lazy(Padding::new(lazy.bytes, !lazy.chunked)));
    }
    r.map(Body::Full)
}

/// Whether a request is git smart-HTTP on the git host (checked before
/// the body is read). `/api` and below is the Enterprise Server layout of
/// the APIs (`/api/v3/…`, `/api/graphql`): routed with the API host's
/// requests (`api` is not a name GitHub lets an account take).
pub(crate) fn is_git_request(req: &http::Request<Incoming>, sni: Option<&str>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())
        .or(sni)
        .map(crate::hosts::normalise)
        .unwrap_or_default();
    let path = req.uri().path();
    host == GIT_HOST && path != "/api" && !path.starts_with("/api/")
}

fn text(status: StatusCode, body: &str) -> Resp {
    crate::respond::text(status, body.to_owned())
}

fn unauthorized() -> Resp {
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        "Invalid username or token. Password authentication is not supported for Git operations.\n",
    );
    crate::respond::set_header(&mut r, "www-authenticate", "Basic realm=\"GitHub\"");
    r
}

struct LogLine<'a> {
    method: &'a str,
    path: &'a str,
    user_agent: Option<String>,
    status: u16,
    target: &'a str,
}

fn log(shared: &Shared, line: LogLine<'_>) {
    shared.log().push(RequestRecord {
        seq: 0,
        ms: shared.elapsed_ms(),
        host: GIT_HOST.to_owned(),
        method: line.method.to_owned(),
        path: line.path.to_owned(),
        status: line.status,
        client_request_id: None,
        user_agent: line.user_agent,
        target: line.target.to_owned(),
    });
}

/// Answers one git smart-HTTP request.
pub(crate) async fn serve_git(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
) -> Result<http::Response<Body>, crate::server::Dropped> {
    let method = req.method().to_string();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (resp, target) = serve(&shared, req).await;
    log(
        &shared,
        LogLine {
            method: &method,
            path: &path_q,
            user_agent,
            status: resp.status().as_u16(),
            target: &target,
        },
    );
    Ok(resp)
}

async fn serve(
    shared: &Arc<Shared>,
    req: http::Request<Incoming>,
) -> (http::Response<Body>, String) {
    let gh = shared.github.clone();
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query = req.uri().query().unwrap_or("").to_owned();
    if segs.len() < 3 {
        return (
            full_body(text(StatusCode::NOT_FOUND, "Not Found\n")),
            "git".into(),
        );
    }
    let owner = segs[0].clone();
    let repo = segs[1].strip_suffix(".git").unwrap_or(&segs[1]).to_owned();
    let rest = segs[2..].join("/");
    let target = format!("git:{owner}/{repo}");
    let service = match (req.method().as_str(), rest.as_str()) {
        ("GET", "info/refs") => {
            let svc = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.into_owned());
            match svc.as_deref() {
                Some(s @ ("git-upload-pack" | "git-receive-pack")) => s.to_owned(),
                // The dumb protocol: GitHub does not serve it either.
                _ => {
                    return (
                        full_body(text(
                            StatusCode::FORBIDDEN,
                            "Please upgrade your git client.\n",
                        )),
                        target,
                    );
                }
            }
        }
        ("POST", s @ ("git-upload-pack" | "git-receive-pack")) => s.to_owned(),
        _ => {
            return (
                full_body(text(StatusCode::NOT_FOUND, "Not Found\n")),
                target,
            );
        }
    };
    let write = service == "git-receive-pack";

    let token = match auth::credential(req.headers()) {
        Cred::Token(t) => match auth::token(&gh, &t) {
            Some(tok) => tok,
            None => return (full_body(unauthorized()), target),
        },
        _ => return (full_body(unauthorized()), target),
    };
    let info = {
        let st = gh.state();
        st.repos.get(&repo_key(&owner, &repo)).map(|r| {
            (
                r.owner.clone(),
                r.name.clone(),
                r.default_branch.clone(),
                r.protected
                    .iter()
                    .map(|b| format!("refs/heads/{b}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
    };
    let Some((owner, repo, default_branch, protected)) = info else {
        return (
            full_body(text(StatusCode::NOT_FOUND, "Repository not found.\n")),
            target,
        );
    };
    if !token.reaches(&owner, &repo) || !token.can("contents", false) {
        return (
            full_body(text(StatusCode::NOT_FOUND, "Repository not found.\n")),
            target,
        );
    }
    if write && !token.can("contents", true) {
        return (
            full_body(text(
                StatusCode::FORBIDDEN,
                &format!(
                    "Permission to {owner}/{repo}.git denied to {}.\n",
                    token.actor.login
                ),
            )),
            target,
        );
    }

    let reasons = gh
        .root
        .join(format!("reasons-{}", uuid::Uuid::new_v4().simple()));
    let mut cmd = std::process::Command::new("git");
    super::scrub_env(&mut cmd);
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &gh.repos_dir)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env(
            "PATH_INFO",
            format!(
                "/{}/{}.git/{rest}",
                owner.to_ascii_lowercase(),
                repo.to_ascii_lowercase()
            ),
        )
        .env("REQUEST_METHOD", req.method().as_str())
        .env("QUERY_STRING", &query)
        .env("REMOTE_USER", &token.actor.login)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("HOME", &gh.root)
        .env("EXPEDITE_GH_PROTECTED", &protected)
        .env("EXPEDITE_GH_DEFAULT", &default_branch)
        .env(
            "EXPEDITE_GH_WORKFLOWS",
            if token.can("workflows", true) {
                "1"
            } else {
                "0"
            },
        )
        .env("EXPEDITE_GH_REASONS", &reasons)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let hv = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(ct) = hv("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(cl) = hv("content-length") {
        cmd.env("CONTENT_LENGTH", cl);
    }
    if let Some(ce) = hv("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", ce);
    }
    if let Some(p) = hv("git-protocol") {
        cmd.env("GIT_PROTOCOL", &p).env("HTTP_GIT_PROTOCOL", p);
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                full_body(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot run git http-backend: {e}\n"),
                )),
                target,
            );
        }
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return (
            full_body(text(StatusCode::INTERNAL_SERVER_ERROR, "no pipes\n")),
            target,
        );
    };
    let mut body = req.into_body();
    // Feeds the request body; an error (client gone) ends the feed early.
    let feed = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ())?;
            if let Ok(data) = frame.into_data()
                && stdin.write_all(&data).await.is_err()
            {
                return Err(());
            }
        }
        let _ = stdin.shutdown().await;
        Ok(())
    });

    let deadline = tokio::time::Instant::now() + GIT_TIMEOUT;
    // CGI headers first.
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let head_end = loop {
        if let Some(i) = find_header_end(&buf) {
            break Some(i);
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout_at(deadline, stdout.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let Some((head_len, body_start)) = head_end else {
        let _ = child.kill().await;
        feed.abort();
        let _ = std::fs::remove_file(&reasons);
        return (
            full_body(text(
                StatusCode::BAD_GATEWAY,
                "git http-backend gave no response\n",
            )),
            target,
        );
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let rest_bytes = buf[body_start..].to_vec();
    let mut builder = http::Response::builder().status(StatusCode::OK);
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            builder = builder.status(code);
        } else if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.trim().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            builder = builder.header(name, value);
        }
    }

    if write && rest == "git-receive-pack" {
        // Pushes: buffer the (small) report so refusals carry their reasons.
        let mut all = rest_bytes;
        let read = tokio::time::timeout_at(deadline, stdout.read_to_end(&mut all)).await;
        let ok = matches!(read, Ok(Ok(_)));
        if !ok {
            let _ = child.kill().await;
        }
        let _ = tokio::time::timeout_at(deadline, child.wait()).await;
        let _ = feed.await;
        let reasons_text = std::fs::read_to_string(&reasons).unwrap_or_default();
        let _ = std::fs::remove_file(&reasons);
        if !reasons_text.is_empty() {
            all = rewrite_report(&all, &reasons_text);
        }
        let resp = builder
            .body(Body::Full(Full::new(Bytes::from(all))))
            .unwrap_or_else(|_| {
                full_body(text(StatusCode::INTERNAL_SERVER_ERROR, "bad CGI headers\n"))
            });
        return (resp, target);
    }

    let (tx, rx) = mpsc::channel::<Result<Bytes, BoxError>>(16);
    tokio::spawn(async move {
        let pump = async {
            if !rest_bytes.is_empty() && tx.send(Ok(Bytes::from(rest_bytes))).await.is_err() {
                return false;
            }
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut chunk).await {
                    Ok(0) => return true,
                    Ok(n) => {
                        if tx
                            .send(Ok(Bytes::copy_from_slice(&chunk[..n])))
                            .await
                            .is_err()
                        {
                            // The client went away.
                            return false;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Box::new(e))).await;
                        return false;
                    }
                }
            }
        };
        match tokio::time::timeout_at(deadline, pump).await {
            Ok(true) => {
                let _ = tokio::time::timeout_at(deadline, child.wait()).await;
            }
            Ok(false) => {
                let _ = child.kill().await;
            }
            Err(_) => {
                let _ = child.kill().await;
                let _ = tx.send(Err("git http-backend timed out".into())).await;
            }
        }
        feed.abort();
        let _ = std::fs::remove_file(&reasons);
    });
    let resp = builder.body(Body::Stream(rx)).unwrap_or_else(|_| {
        full_body(text(StatusCode::INTERNAL_SERVER_ERROR, "bad CGI headers\n"))
    });
    (resp, target)
}

/// `(header length, body start)` once the CGI header block is complete.
fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

/// Splits pkt-lines; `None` payload is a flush/delim packet.
fn pkt_lines(mut data: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return None;
        }
        let len = usize::from_str_radix(std::str::from_utf8(&data[..4]).ok()?, 16).ok()?;
        if len < 4 {
            out.push(None);
            data = &data[4..];
            continue;
        }
        if data.len() < len {
            return None;
        }
        out.push(Some(data[4..len].to_vec()));
        data = &data[len..];
    }
    Some(out)
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{:04x}", payload.len() + 4).into_bytes();
    v.extend_from_slice(payload);
    v
}

/// Replaces `ng <ref> pre-receive hook declined` in a receive-pack report
/// with the reason the hook recorded for that ref (GitHub puts its reason,
/// e.g. the `workflows` refusal, in the report). Works with and without
/// side-band; returns the input unchanged when it cannot parse it.
fn rewrite_report(body: &[u8], reasons: &str) -> Vec<u8> {
    let map: Vec<(&str, &str)> = reasons.lines().filter_map(|l| l.split_once(' ')).collect();
    let fix_status = |inner: &[u8]| -> Option<Vec<u8>> {
        let lines = pkt_lines(inner)?;
        let mut out = Vec::new();
        for l in lines {
            match l {
                None => out.extend_from_slice(b"0000"),
                Some(p) => {
                    let s = String::from_utf8_lossy(&p).into_owned();
                    let t = s.trim_end_matches('\n');
                    let replaced = t.strip_prefix("ng ").and_then(|r| {
                        let (rf, _) = r.split_once(' ')?;
                        let reason = map.iter().find(|(m, _)| *m == rf)?.1;
                        Some(format!("ng {rf} {reason}\n"))
                    });
                    match replaced {
                        Some(n) => out.extend(pkt(n.as_bytes())),
                        None => out.extend(pkt(&p)),
                    }
                }
            }
        }
        Some(out)
    };
    let Some(outer) = pkt_lines(body) else {
        return body.to_vec();
    };
    let sideband = outer
        .iter()
        .flatten()
        .next()
        .is_some_and(|p| matches!(p.first(), Some(1..=3)));
    if !sideband {
        return fix_status(body).unwrap_or_else(|| body.to_vec());
    }
    let band1: Vec<u8> = outer
        .iter()
        .flatten()
        .filter(|p| p.first() == Some(&1))
        .flat_map(|p| p[1..].to_vec())
        .collect();
    let Some(new_band1) = fix_status(&band1) else {
        return body.to_vec();
    };
    let mut out = Vec::new();
    let mut placed = false;
    for p in outer {
        match p {
            None => out.extend_from_slice(b"0000"),
            Some(p) if p.first() == Some(&1) => {
                if !placed {
                    placed = true;
                    for chunk in new_band1.chunks(65515) {
                        let mut payload = vec![1u8];
                        payload.extend_from_slice(chunk);
                        out.extend(pkt(&payload));
                    }
                }
            }
            Some(p) => out.extend(pkt(&p)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reasons_are_rewritten_inside_side_band() {
        let mut inner = pkt(b"unpack ok\n");
        inner.extend(pkt(b"ng refs/heads/main pre-receive hook declined\n"));
        inner.extend_from_slice(b"0000");
        let mut band = vec![1u8];
        band.extend_from_slice(&inner);
        let mut body = pkt(b"\x02remote: hi\n");
        body.extend(pkt(&band));
        body.extend_from_slice(b"0000");
        let out = rewrite_report(&body, "refs/heads/main protected branch hook declined\n");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("ng refs/heads/main protected branch hook declined"),
            "{text}"
        );
        assert!(text.contains("remote: hi"));
    }
}
