//! A minimal blocking HTTP/1.1 client for the OTLP exporter, which runs on the span batcher's own
//! thread: one `POST` per connection (`Connection: close`), plain `http://` only, bounded response.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::pin::Pin;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Largest response body read back from a collector.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("only http:// URLs are supported")]
    Scheme,
    #[error("the URL has no host")]
    Host,
    #[error("{0} did not resolve")]
    Resolve(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed HTTP response")]
    Response,
}

/// Posts OTLP requests with blocking sockets and a per-request timeout.
#[derive(Clone, Copy, Debug)]
pub struct BlockingHttpClient {
    timeout: Duration,
}

impl BlockingHttpClient {
    /// A client whose connect, write and read each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    fn post(self, request: &Request<Bytes>) -> Result<Response<Bytes>, PostError> {
        let uri = request.uri();
        if uri.scheme_str() != Some("http") {
            return Err(PostError::Scheme);
        }
        let host = uri.host().ok_or(PostError::Host)?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| PostError::Resolve(host.to_owned()))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let body = request.body();
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-length: {}\r\nconnection: close\r\n",
            request.method(),
            body.len()
        );
        for (name, value) in request.headers() {
            if let Ok(value) = value.to_str() {
                head.push_str(name.as_str());
                head.push_str(": ");
                head.push_str(value);
                head.push_str("\r\n");
            }
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw)?;
        parse_response(&raw)
    }
}

/// Splits a raw HTTP/1.1 response into status and body (`Content-Length`, chunked, or to EOF).
fn parse_response(raw: &[u8]) -> Result<Response<Bytes>, PostError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(PostError::Response)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| PostError::Response)?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(PostError::Response)?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else {
        let end = length.map_or(rest.len(), |len| len.min(rest.len()));
        rest[..end].to_vec()
    };
    Response::builder()
        .status(status)
        .body(Bytes::from(body))
        .map_err(|_| PostError::Response)
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, PostError> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(PostError::Response)?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| PostError::Response)?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| PostError::Response)?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or(PostError::Response)?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or(PostError::Response)?;
    }
}

impl HttpClient for BlockingHttpClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let result = self.post(&request).map_err(|e| Box::new(e) as HttpError);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_eof_bodies() {
        let fixed = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(fixed.status(), 200);
        assert_eq!(&fixed.body()[..], b"abc");
        let chunked = parse_response(
            b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.status(), 400);
        assert_eq!(&chunked.body()[..], b"abcde");
        let eof = parse_response(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
        assert_eq!(eof.status(), 204);
        assert!(eof.body().is_empty());
    }

    #[test]
    fn refuses_garbage_and_truncated_chunks() {
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab")
                .is_err()
        );
    }

    #[test]
    fn refuses_https() {
        let client = BlockingHttpClient::new(Duration::from_secs(1));
        let request = Request::post("https://example.invalid/v1/traces")
            .body(Bytes::new())
            .unwrap();
        assert!(matches!(client.post(&request), Err(PostError::Scheme)));
    }
}
