//! A minimal HTTP/1.1 client over a plain TCP stream, for the daemon's
//! endpoint and Prometheus's query API. Plain sockets on purpose: the tests
//! also need to send what a real client library refuses to (huge headers,
//! half a request).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a request may take before the test gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A response: status code, headers (lowercased names) and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status code, e.g. 200.
    pub status: u16,
    /// `(lowercased name, value)` pairs.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl HttpReply {
    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` to `address` (`host:port`) with `headers`, and reads
/// the whole response (the request asks the server to close).
///
/// # Errors
/// Connection and I/O errors, and responses that are not HTTP/1.x.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpReply> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" || method == "DELETE" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    read_reply(&mut stream)
}

/// `GET path`; panics on connection errors (the server must be up).
pub fn http_get(address: &str, path: &str) -> HttpReply {
    http_request(address, "GET", path, &[])
        .unwrap_or_else(|e| panic!("GET http://{address}{path}: {e}"))
}

/// Reads a response until the server closes the connection.
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<HttpReply> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_reply(raw: &[u8]) -> Option<HttpReply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a query parameter value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the sample `series` (a metric name with its labels exactly
/// as the exposition writes them, e.g. `x_total{source="a"}`) in Prometheus
/// text `exposition`.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_replies_parse() {
        let plain = parse_reply(b"HTTP/1.1 404 Not Found\r\nContent-Type: x\r\n\r\n{}").unwrap();
        assert_eq!(plain.status, 404);
        assert_eq!(plain.header("content-type"), Some("x"));
        assert_eq!(plain.body, "{}");
        let chunked = parse_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "abcde");
        assert_eq!(url_encode("a b{c}"), "a%20b%7Bc%7D");
    }

    #[test]
    fn metric_values_are_found_by_exact_series() {
        let text = "# HELP x_total x\nx_total{a=\"b\"} 3\nx_total 5\n";
        assert_eq!(metric_value(text, "x_total{a=\"b\"}"), Some(3.0));
        assert_eq!(metric_value(text, "x_total"), Some(5.0));
        assert_eq!(metric_value(text, "y_total"), None);
    }
}
