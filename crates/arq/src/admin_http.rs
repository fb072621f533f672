//! A minimal blocking HTTP/1.1 client for the node's admin API: one request per connection, a bearer
//! token, and the status with the JSON body (`null` when the body is not JSON).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Sends `method path` to `url` (`http://host:port`) with `body` of `content_type`, if any.
pub(crate) fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> anyhow::Result<(u16, Value)> {
    let Some(authority) = url.strip_prefix("http://") else {
        bail!("--url must be http://host:port (got {url})");
    };
    let authority = authority.trim_end_matches('/');
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(Duration::from_mins(1)))?;
    let (content_type, payload) = body.unwrap_or(("", &[]));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(payload)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
