//! Connections held without asking anything, held idle, or too many from one address,
//! and the request-head rules, against the real binary over raw TCP and HTTP/2.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Server, client, raw_exchange};

/// The HTTP/2 connection preface (RFC 9113 § 3.4) and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// How long the server took to close `s`, reading (and dropping) what it sent.
fn time_to_close(mut s: TcpStream, limit: Duration) -> Duration {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) => panic!("the connection was not closed within {limit:?}: {e}"),
        }
    }
}

#[test]
fn a_connection_that_sends_nothing_is_closed_within_the_header_timeout() {
    let server = Server::start(&[("PALISADE_HEADER_READ_TIMEOUT", "1s")]);
    let s = TcpStream::connect(server.addr).expect("connect");
    let waited = time_to_close(s, Duration::from_secs(5));
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(2)).contains(&waited),
        "closed after {waited:?}"
    );
}

#[test]
fn an_http2_connection_silent_after_its_preface_is_closed() {
    let server = Server::start(&[("PALISADE_HEADER_READ_TIMEOUT", "1s")]);
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.write_all(H2_PREFACE).expect("preface");
    let waited = time_to_close(s, Duration::from_secs(5));
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(2)).contains(&waited),
        "closed after {waited:?}"
    );
}

/// An HTTP/2 connection (prior knowledge, h2c) to `addr`, its driver spawned.
async fn h2(
    addr: SocketAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, driver)
}

async fn h2_get(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    extra_headers: usize,
) -> StatusCode {
    let headers: Vec<(String, &str)> = (0..extra_headers)
        .map(|i| (format!("x-h{i}"), "v"))
        .collect();
    h2_get_with(send, &headers).await
}

/// GET /health with :authority `localhost` and `headers`.
async fn h2_get_with(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    headers: &[(String, &str)],
) -> StatusCode {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri("http://localhost/health");
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let (answer, _) = send
        .clone()
        .ready()
        .await
        .expect("ready")
        .send_request(req.body(()).expect("request"), true)
        .expect("send");
    answer.await.expect("answer").status()
}

/// POSTs `body` as `content_type` over HTTP/2 with no `content-length`: the body
/// follows in DATA frames and only the stream's end says where it stops.
async fn h2_post_unsized(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    path: &str,
    content_type: &str,
    body: &'static [u8],
) -> StatusCode {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://localhost{path}"))
        .header("content-type", content_type)
        .body(())
        .expect("request");
    let (answer, mut stream) = send
        .clone()
        .ready()
        .await
        .expect("ready")
        .send_request(req, false)
        .expect("send");
    stream
        .send_data(bytes::Bytes::from_static(body), true)
        .expect("data");
    answer.await.expect("answer").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_body_without_a_length_still_needs_json() {
    let server = Server::start(&[]);
    let (mut send, _driver) = h2(server.addr).await;
    // Refresh reads its optional body itself, so only the route's guard stands
    // between it and a body of another type.
    let refresh = "/api/v1/auth/refresh";
    let json = br#"{"refresh_token":"not-a-token"}"#;
    assert_eq!(
        h2_post_unsized(&mut send, refresh, "text/plain", json).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // The same body sent as JSON the same way is read (and its token refused).
    assert_eq!(
        h2_post_unsized(&mut send, refresh, "application/json", json).await,
        StatusCode::UNAUTHORIZED
    );
    // A head without END_STREAM, then an empty last DATA frame: no body after all,
    // whatever the type says (here: no token, so 401).
    assert_eq!(
        h2_post_unsized(&mut send, refresh, "text/plain", b"").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_http2_a_host_header_must_match_the_authority() {
    let server = Server::start(&[]);
    let (mut send, _driver) = h2(server.addr).await;
    let host = |v: &'static str| [("host".to_owned(), v)];
    assert_eq!(
        h2_get_with(&mut send, &host("localhost")).await,
        StatusCode::OK
    );
    assert_eq!(
        h2_get_with(&mut send, &host("elsewhere.example")).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let server = Server::start(&[("PALISADE_IDLE_TIMEOUT", "1s")]);
    let (mut send, driver) = h2(server.addr).await;
    assert_eq!(h2_get(&mut send, 0).await, StatusCode::OK);
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the idle connection was not closed")
        .expect("driver");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "closed after {waited:?}"
    );
    let refused = send.ready().await.expect_err("the server said goodbye");
    assert!(refused.is_go_away(), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_hundred_headers_are_refused_over_http2() {
    let server = Server::start(&[]);
    let (mut send, _driver) = h2(server.addr).await;
    assert_eq!(
        h2_get(&mut send, 99).await,
        StatusCode::OK,
        "100 with :authority's host"
    );
    assert_eq!(
        h2_get(&mut send, 101).await,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

/// A connection from `from` to the server.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback address");
    socket.connect(to).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_refused_past_its_cap_while_another_still_connects() {
    let server = Server::start(&[("PALISADE_MAX_CONNECTIONS_PER_CLIENT", "3")]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 1], server.addr).await);
    }
    // The fourth from the same address is closed at once, unanswered.
    let mut fourth = connect_from([127, 0, 0, 1], server.addr).await;
    let _ = fourth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), fourth.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the fourth connection was served: {:?}",
        String::from_utf8_lossy(&buf)
    );
    // Another address is not affected.
    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    other
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    other.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("http_connections_refused_total{reason=\"per_client_limit\"} 1"),
        "the refusal is counted: {answer}"
    );
    // A place comes back when a held connection closes.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = client()
        .get(server.url("/health"))
        .send()
        .await
        .expect("a place came back");
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn the_host_header_is_required_once_on_http_1_1() {
    let server = Server::start(&[]);
    for (what, request) in [
        (
            "no Host",
            "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "two Host headers",
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        ),
        (
            "user information in Host",
            "GET /health HTTP/1.1\r\nHost: admin@a\r\nConnection: close\r\n\r\n",
        ),
        (
            "a path in Host",
            "GET /health HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n",
        ),
    ] {
        let answer = raw_exchange(&server, request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(answer.contains("request.bad_host"), "{what}: {answer}");
        assert!(
            answer.contains("application/problem+json"),
            "{what}: {answer}"
        );
    }
    let one = raw_exchange(
        &server,
        b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(one.starts_with("HTTP/1.1 200"), "{one}");
    let http10 = raw_exchange(&server, b"GET /health HTTP/1.0\r\n\r\n");
    assert!(
        http10.starts_with("HTTP/1.0 200"),
        "HTTP/1.0 may omit Host: {http10}"
    );
}

#[test]
fn a_body_that_stops_arriving_is_408_not_503() {
    let server = Server::start(&[("PALISADE_REQUEST_TIMEOUT", "1s")]);
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request.timeout"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}
