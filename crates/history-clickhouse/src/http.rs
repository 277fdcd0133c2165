//! A small blocking HTTP/1.1 client for ClickHouse's HTTP interface.
//!
//! Why not a crate: the store's trait is synchronous, ClickHouse speaks
//! plain HTTP on 127.0.0.1 or a private network, and every request is one
//! POST whose answer is read whole. A `std::net::TcpStream`, a request line
//! and a reader for `Content-Length` and chunked bodies is all it takes,
//! with no async runtime and no new dependency (the workspace has no
//! blocking HTTP client). One connection per request: on 127.0.0.1 a
//! connect costs tens of microseconds, small beside a query (see the
//! crate's figures), and a dead keep-alive connection can never make a
//! retried insert ambiguous. TLS is not supported (`https://` is refused).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest answer read (4 GiB): more is a server gone wrong.
const MAX_ANSWER: usize = 1 << 32;

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not `http://host:port[/]`.
    Url(String),
    /// Connecting failed (refused, unreachable, timed out): nothing was
    /// sent.
    Connect(std::io::Error),
    /// Sending or receiving failed (a timeout included).
    Io(std::io::Error),
    /// The answer was not HTTP as expected.
    Protocol(String),
    /// The server answered with an error: ClickHouse's code (from the
    /// `X-ClickHouse-Exception-Code` header or the text) and its message.
    Server {
        /// The HTTP status.
        status: u16,
        /// ClickHouse's error code, 0 if none was given.
        code: u32,
        /// The message.
        message: String,
    },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Url(u) => write!(f, "{u}"),
            HttpError::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::Protocol(p) => write!(f, "bad HTTP answer: {p}"),
            HttpError::Server {
                status,
                code,
                message,
            } => write!(
                f,
                "ClickHouse answered {status} (code {code}): {}",
                message.trim()
            ),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Connect(e) | HttpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// How long a connection may take, whatever the request's timeout: a
/// server cut off (packets dropped, no refusal) is noticed in this, not
/// in the whole request's time (an agent shipping to it then says so
/// and retries within seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is.
#[derive(Clone, Debug)]
pub struct Endpoint {
    host: String,
    addr: SocketAddr,
    timeout: Duration,
}

impl Endpoint {
    /// Parses `http://host:port` (a trailing `/` allowed; port 8123 if
    /// absent) and resolves the host once.
    pub fn parse(url: &str, timeout: Duration) -> Result<Endpoint, HttpError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            HttpError::Url(format!(
                "`{url}`: only http:// URLs are supported (no TLS yet)"
            ))
        })?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(HttpError::Url(format!(
                "`{url}`: expected http://host:port, without a path or user"
            )));
        }
        let host = if rest.contains(':') && !rest.ends_with(']') {
            rest.to_string()
        } else {
            format!("{rest}:8123")
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|e| HttpError::Url(format!("`{url}`: {e}")))?
            .next()
            .ok_or_else(|| HttpError::Url(format!("`{url}`: the host has no address")))?;
        Ok(Endpoint {
            host,
            addr,
            timeout,
        })
    }

    /// POSTs `body` to `/?{query}` (already URL-encoded) and returns the
    /// answer's body; an error status becomes [`HttpError::Server`].
    pub fn post(&self, query: &str, body: &[u8]) -> Result<Vec<u8>, HttpError> {
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout.min(CONNECT_TIMEOUT))
            .map_err(HttpError::Connect)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(HttpError::Io)?;
        let head = format!(
            "POST /?{query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(HttpError::Io)?;
        stream.write_all(body).map_err(HttpError::Io)?;
        stream.flush().map_err(HttpError::Io)?;
        read_response(BufReader::with_capacity(1 << 16, stream))
    }
}

/// Reads an HTTP/1.1 answer whole: its status, the headers it needs
/// (`Content-Length`, `Transfer-Encoding: chunked`,
/// `X-ClickHouse-Exception-Code`) and the body; an error status (or
/// ClickHouse's exception text at the end of a 200 body) becomes
/// [`HttpError::Server`].
pub fn read_response(mut reader: impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(HttpError::Io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Protocol(format!("status line `{}`", line.trim())))?;
    let (mut length, mut chunked, mut code) = (None, false, 0u32);
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(HttpError::Io)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "x-clickhouse-exception-code" => code = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(HttpError::Io)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| HttpError::Protocol(format!("chunk size `{}`", line.trim())))?;
            if size == 0 {
                break;
            }
            read_exactly(&mut reader, size, &mut out)?;
            line.clear();
            reader.read_line(&mut line).map_err(HttpError::Io)?;
        }
    } else if let Some(n) = length {
        read_exactly(&mut reader, n, &mut out)?;
    } else {
        reader
            .take(MAX_ANSWER as u64)
            .read_to_end(&mut out)
            .map_err(HttpError::Io)?;
    }
    if status != 200 {
        let message = String::from_utf8_lossy(&out).into_owned();
        if code == 0 {
            code = message
                .strip_prefix("Code: ")
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
        }
        return Err(HttpError::Server {
            status,
            code,
            message,
        });
    }
    // A server error after the first bytes of an answer arrives in the
    // body (the status was already sent): ClickHouse writes its usual
    // exception text at the end.
    let end = &out[out.len().saturating_sub(64 << 10)..];
    if let Some(at) = find(end, b"\nCode: ") {
        let tail = String::from_utf8_lossy(&end[at + 1..]).into_owned();
        if tail.contains("DB::Exception") {
            return Err(HttpError::Server {
                status,
                code: 0,
                message: tail,
            });
        }
    }
    Ok(out)
}

/// Appends exactly `n` bytes of `reader` to `out`, growing it as they
/// arrive (a size announced by the other side is not allocated up front).
fn read_exactly(reader: &mut impl BufRead, n: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
    if n > MAX_ANSWER.saturating_sub(out.len()) {
        return Err(HttpError::Protocol(format!(
            "an answer above {MAX_ANSWER} bytes"
        )));
    }
    let want = out.len() + n;
    reader
        .take(n as u64)
        .read_to_end(out)
        .map_err(HttpError::Io)?;
    if out.len() != want {
        return Err(HttpError::Protocol("the answer ends early".into()));
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Percent-encodes a query string value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_port_only() {
        let t = Duration::from_secs(1);
        assert!(Endpoint::parse("http://127.0.0.1:8123", t).is_ok());
        assert!(Endpoint::parse("http://127.0.0.1:8123/", t).is_ok());
        assert_eq!(
            Endpoint::parse("http://127.0.0.1", t).unwrap().addr.port(),
            8123
        );
        for bad in [
            "https://x:1",
            "127.0.0.1:8123",
            "http://a:1/db",
            "http://u@a:1",
            "http://",
        ] {
            assert!(
                matches!(Endpoint::parse(bad, t), Err(HttpError::Url(_))),
                "{bad}"
            );
        }
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
