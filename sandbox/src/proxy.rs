//! An HTTPS proxy (`CONNECT host:443`, RFC 9110 §9.3.6) in front of the
//! sandbox, so any client — the Azure CLI, `gh`, curl, an SDK — reaches the
//! emulated hosts by their names through `HTTPS_PROXY`, trusting the sandbox
//! CA, without touching `/etc/hosts` or knowing about `EXPEDITE_RESOLVE`.
//!
//! Only the sandbox's own hosts (the `resolve` patterns of
//! [`crate::Settings`]) on port 443 are tunnelled, to its HTTPS listener; the
//! TLS handshake inside the tunnel is the client's with the sandbox, SNI and
//! all. Anything else is refused with 403: this is not an open proxy. A
//! request that is not `CONNECT` gets 405. The request head is bounded (8 KiB,
//! 10 s) and so is a tunnel's life ([`TUNNEL_LIMIT`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest request head accepted.
const HEAD_LIMIT: usize = 8 * 1024;
/// Time to send the request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one tunnel (a client keeps a connection for a while).
pub const TUNNEL_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The hosts a tunnel may be opened to: exact names, or `*.domain` for every
/// name under `domain`.
#[derive(Debug, Clone)]
pub(crate) struct Allowed(pub Vec<String>);

impl Allowed {
    fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|p| match p.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == p.to_ascii_lowercase(),
        })
    }
}

/// Serves the proxy until `shutdown`; tunnels go to `upstream`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    allowed: Arc<Allowed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let allowed = allowed.clone();
                conns.spawn(async move {
                    let _ = tokio::time::timeout(
                        TUNNEL_LIMIT,
                        serve(stream, upstream, &allowed),
                    )
                    .await;
                });
            }
        }
    }
    conns.abort_all();
}

/// What the head of a proxy request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    /// `CONNECT host:port`.
    Connect { host: String, port: u16 },
    /// Any other method (a plain-HTTP proxy request).
    Other(String),
    /// Not HTTP.
    Garbage,
}

fn parse_head(head: &str) -> Ask {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ask::Garbage;
    };
    if !version.starts_with("HTTP/1.") {
        return Ask::Garbage;
    }
    if !method.eq_ignore_ascii_case("CONNECT") {
        return Ask::Other(method.to_owned());
    }
    // `host:port`; an IPv6 literal is `[..]:port` (never a sandbox host).
    match target.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if !host.is_empty() => Ask::Connect {
                host: host.to_owned(),
                port,
            },
            _ => Ask::Garbage,
        },
        None => Ask::Garbage,
    }
}

async fn answer(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!("{text}\n");
    let _ = stream
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let _ = stream.shutdown().await;
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, allowed: &Allowed) {
    // The head, bounded in size and time; bytes after it (a client that
    // does not wait for the 200) go up the tunnel first.
    let mut buf = Vec::with_capacity(1024);
    let read_head = async {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(end + 4);
            }
            if buf.len() > HEAD_LIMIT {
                return None;
            }
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let Ok(Some(end)) = tokio::time::timeout(HEAD_TIMEOUT, read_head).await else {
        return;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end..].to_vec();
    match parse_head(&head) {
        Ask::Garbage => answer(&mut client, "400 Bad Request", "not an HTTP proxy request").await,
        Ask::Other(method) => {
            answer(
                &mut client,
                "405 Method Not Allowed",
                &format!(
                    "the sandbox proxy only tunnels HTTPS (CONNECT host:443), not {method}; use https:// URLs"
                ),
            )
            .await
        }
        Ask::Connect { host, port } if port != 443 || !allowed.allows(&host) => {
            answer(
                &mut client,
                "403 Forbidden",
                &format!(
                    "the sandbox proxy only reaches the sandbox's own hosts on port 443 ({}), not {host}:{port}",
                    allowed.0.join(", ")
                ),
            )
            .await
        }
        Ask::Connect { .. } => {
            let Ok(mut up) = TcpStream::connect(upstream).await else {
                answer(
                    &mut client,
                    "502 Bad Gateway",
                    "the sandbox's HTTPS listener is gone",
                )
                .await;
                return;
            };
            let _ = up.set_nodelay(true);
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            if !rest.is_empty() && up.write_all(&rest).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_as_proxies_read_them() {
        assert_eq!(
            parse_head("CONNECT management.azure.test:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ask::Connect {
                host: "management.azure.test".into(),
                port: 443
            }
        );
        assert_eq!(
            parse_head("GET http://example.test/ HTTP/1.1\r\n\r\n"),
            Ask::Other("GET".into())
        );
        for garbage in [
            "",
            "CONNECT",
            "CONNECT a:b HTTP/1.1",
            "CONNECT :443 HTTP/1.1",
            "\x16\x03\x01",
        ] {
            assert_eq!(parse_head(garbage), Ask::Garbage, "{garbage:?}");
        }
    }

    #[test]
    fn only_the_sandboxs_hosts_are_allowed() {
        let a = Allowed(vec!["*.azure.test".into(), "github.test".into()]);
        assert!(a.allows("management.azure.test"));
        assert!(a.allows("Login.Azure.Test."));
        assert!(a.allows("github.test"));
        assert!(!a.allows("azure.test"));
        assert!(!a.allows("evilazure.test"));
        assert!(!a.allows("api.github.test.evil.example"));
        assert!(!a.allows("example.com"));
    }
}
