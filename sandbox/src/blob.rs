//! A minimal Azure Blob Storage data plane on `{account}.blob.core.test`:
//! create a container, put / get / head / delete a block blob. This is where
//! a CI job's built site zip lives; Static Web Apps' zip deploy takes a URL
//! to it (`arm::static_sites` reads the blob from here — the sandbox never
//! connects anywhere).
//!
//! No authentication: every container behaves as public and any query string
//! (a SAS token) is ignored. Errors are Azure Storage's XML
//! `<Error><Code/><Message/></Error>` with `x-ms-error-code`.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};

use crate::hosts;
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::world::World;

/// The `x-ms-version` the sandbox answers with when the client sends none.
const STORAGE_VERSION: &str = "2025-01-05";

/// One block blob.
#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

impl Blob {
    pub fn new(bytes: Bytes, content_type: &str) -> Self {
        Blob {
            bytes,
            content_type: content_type.to_owned(),
            etag: format!(
                "\"0x8DD{}\"",
                &uuid::Uuid::new_v4().simple().to_string()[..12].to_ascii_uppercase()
            ),
            last_modified: Utc::now(),
        }
    }
}

/// A storage account: container name → blob name → blob.
#[derive(Debug, Clone, Default)]
pub struct StorageAccount {
    pub name: String,
    pub containers: BTreeMap<String, BTreeMap<String, Blob>>,
}

/// `{account}.blob.core.test`.
pub fn account_host(account: &str) -> String {
    format!("{account}.{}", hosts::BLOB_DOMAIN)
}

/// The account a host name belongs to, if the sandbox has it.
fn account_of<'w>(world: &'w World, host: &str) -> Option<&'w StorageAccount> {
    let name = host.strip_suffix(&format!(".{}", hosts::BLOB_DOMAIN))?;
    world.storage_accounts.get(name)
}

/// Storage's error answer (HEAD answers carry only the header).
fn error(req: &Req, status: StatusCode, code: &str, message: &str) -> Resp {
    let mut r = if req.method == Method::HEAD {
        respond::empty(status)
    } else {
        let body = format!(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{}\nTime:{}</Message></Error>",
            uuid::Uuid::new_v4(),
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        respond::build(status, Some("application/xml"), Bytes::from(body))
    };
    respond::set_header(&mut r, "x-ms-error-code", code);
    r
}

fn decorate(req: &Req, r: &mut Resp) {
    respond::set_header(r, "x-ms-request-id", &uuid::Uuid::new_v4().to_string());
    respond::set_header(
        r,
        "x-ms-version",
        req.header("x-ms-version").unwrap_or(STORAGE_VERSION),
    );
    respond::set_header(r, "server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0");
    if let Some(id) = req.header("x-ms-client-request-id") {
        respond::set_header(r, "x-ms-client-request-id", id);
    }
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Splits `/{container}/{blob…}` (the blob name keeps its slashes).
fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    let (container, blob) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    (decode(container), decode(blob))
}

fn valid_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Serves a request to a blob host; returns the outcome and what answered.
pub(crate) fn handle(shared: &Shared, req: &Req) -> (Outcome, String) {
    let mut world = shared.world();
    let Some(account) = account_of(&world, &req.host).map(|a| a.name.clone()) else {
        return (
            respond::text(
                StatusCode::NOT_FOUND,
                format!("The sandbox does not serve host '{}'.", req.host),
            )
            .into(),
            "unknown".into(),
        );
    };
    let label = format!("blob:{account}");
    let (container, blob) = split_path(&req.path);
    let mut r = answer(&mut world, &account, req, &container, &blob);
    decorate(req, &mut r);
    (r.into(), label)
}

fn answer(world: &mut World, account: &str, req: &Req, container: &str, blob: &str) -> Resp {
    let Some(acct) = world.storage_accounts.get_mut(account) else {
        return error(
            req,
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        );
    };
    if container.is_empty() || (blob.is_empty() && req.query_param("restype") != Some("container"))
    {
        return error(
            req,
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        );
    }
    if blob.is_empty() {
        // `?restype=container`: only creation is emulated.
        if req.method != Method::PUT {
            return unsupported_verb(req);
        }
        if !valid_container_name(container) {
            return error(
                req,
                StatusCode::BAD_REQUEST,
                "InvalidResourceName",
                "The specifed resource name contains invalid characters.",
            );
        }
        if acct.containers.contains_key(container) {
            return error(
                req,
                StatusCode::CONFLICT,
                "ContainerAlreadyExists",
                "The specified container already exists.",
            );
        }
        acct.containers
            .insert(container.to_owned(), BTreeMap::new());
        let mut r = respond::empty(StatusCode::CREATED);
        respond::set_header(&mut r, "last-modified", &http_date(Utc::now()));
        return r;
    }
    let Some(blobs) = acct.containers.get_mut(container) else {
        return error(
            req,
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        );
    };
    if blob.len() > 1024 {
        return error(
            req,
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name length is not within the permissible limits.",
        );
    }
    match req.method {
        Method::PUT => {
            match req.header("x-ms-blob-type") {
                None => {
                    return error(
                        req,
                        StatusCode::BAD_REQUEST,
                        "MissingRequiredHeader",
                        "An HTTP header that's mandatory for this request is not specified.",
                    );
                }
                Some(t) if t != "BlockBlob" => {
                    return error(
                        req,
                        StatusCode::BAD_REQUEST,
                        "InvalidHeaderValue",
                        "The value for one of the HTTP headers is not in the correct format. (The sandbox emulates block blobs only.)",
                    );
                }
                Some(_) => {}
            }
            let content_type = req
                .header("x-ms-blob-content-type")
                .or_else(|| req.header("content-type"))
                .unwrap_or("application/octet-stream");
            let b = Blob::new(req.body.clone(), content_type);
            let mut r = respond::empty(StatusCode::CREATED);
            respond::set_header(&mut r, "etag", &b.etag);
            respond::set_header(&mut r, "last-modified", &http_date(b.last_modified));
            respond::set_header(&mut r, "x-ms-request-server-encrypted", "true");
            blobs.insert(blob.to_owned(), b);
            r
        }
        Method::GET | Method::HEAD => {
            let Some(b) = blobs.get(blob) else {
                return error(
                    req,
                    StatusCode::NOT_FOUND,
                    "BlobNotFound",
                    "The specified blob does not exist.",
                );
            };
            let body = if req.method == Method::HEAD {
                Bytes::new()
            } else {
                b.bytes.clone()
            };
            let mut r = respond::build(StatusCode::OK, Some(&b.content_type), body);
            if req.method == Method::HEAD {
                respond::set_header(&mut r, "content-length", &b.bytes.len().to_string());
            }
            respond::set_header(&mut r, "etag", &b.etag);
            respond::set_header(&mut r, "last-modified", &http_date(b.last_modified));
            respond::set_header(&mut r, "x-ms-blob-type", "BlockBlob");
            respond::set_header(&mut r, "accept-ranges", "bytes");
            r
        }
        Method::DELETE => {
            if blobs.remove(blob).is_none() {
                return error(
                    req,
                    StatusCode::NOT_FOUND,
                    "BlobNotFound",
                    "The specified blob does not exist.",
                );
            }
            respond::empty(StatusCode::ACCEPTED)
        }
        _ => unsupported_verb(req),
    }
}

fn unsupported_verb(req: &Req) -> Resp {
    error(
        req,
        StatusCode::METHOD_NOT_ALLOWED,
        "UnsupportedHttpVerb",
        "The resource doesn't support specified Http Verb.",
    )
}

/// Reads the blob a URL names, for a service that downloads it (Static Web
/// Apps' zip deploy). Only the sandbox's own blob hosts are read; the query
/// (a SAS) is ignored. The error says why, without the query.
pub(crate) fn fetch(world: &World, url: &str) -> Result<Bytes, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    let mut shown = parsed.clone();
    shown.set_query(None);
    let host = parsed.host_str().map(hosts::normalise).unwrap_or_default();
    let Some(account) = account_of(world, &host) else {
        return Err(format!(
            "Failed to download '{shown}': the host '{host}' is not a storage account of the sandbox (only https://{{account}}.{} is reachable).",
            hosts::BLOB_DOMAIN
        ));
    };
    let (container, blob) = split_path(parsed.path());
    account
        .containers
        .get(&container)
        .and_then(|c| c.get(&blob))
        .map(|b| b.bytes.clone())
        .ok_or_else(|| {
            format!("Failed to download '{shown}': 404 BlobNotFound (The specified blob does not exist.).")
        })
}
