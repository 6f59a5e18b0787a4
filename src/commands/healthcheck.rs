//! `pglink healthcheck`: probe a running daemon's `/healthz`, for container health checks
//! in images without curl. Exit 0 on HTTP 200, 1 otherwise, 2 for a malformed URL.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::Exit;

const TIMEOUT: Duration = Duration::from_secs(3);

/// `http://host:port/path` -> (host:port, path).
fn parse(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url: expected http://HOST:PORT/PATH, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/healthz"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!(
            "--url: expected a host and port such as http://127.0.0.1:9187/healthz, got {url:?}"
        ));
    }
    Ok((authority.to_string(), path.to_string()))
}

pub fn healthcheck(url: &str) -> Exit {
    let (authority, path) = match parse(url) {
        Ok(parts) => parts,
        Err(message) => return Exit::BadInput(message),
    };
    match probe(&authority, &path) {
        Ok((200, body)) => {
            print!("{body}");
            Exit::Ok
        }
        Ok((status, body)) => {
            eprintln!("unhealthy: HTTP {status} from {url}\n{body}");
            Exit::Failed
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            Exit::Failed
        }
    }
}

fn probe(authority: &str, path: &str) -> std::io::Result<(u16, String)> {
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse("http://127.0.0.1:9187/healthz"),
            Ok(("127.0.0.1:9187".into(), "/healthz".into()))
        );
        assert_eq!(
            parse("http://127.0.0.1:9187"),
            Ok(("127.0.0.1:9187".into(), "/healthz".into()))
        );
        assert!(parse("https://x:1/").is_err());
        assert!(parse("127.0.0.1:9187").is_err());
        assert!(parse("http://localhost/healthz").is_err());
    }
}
