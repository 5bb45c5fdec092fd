//! A VU's HTTP client. Plain `http://` goes over one HTTP/1.1 connection of the VU's
//! own, through hyper's connection API: a load generator beside its target spends
//! most of its time here, and a pooled client's layers (pool lookup, redirects,
//! per-request timers) cost it about half its rate against wrk (`bench/loadtest.sh`).
//! `https://` goes through reqwest (rustls), pooled per VU.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::{net::TcpStream, time::Instant};

const USER_AGENT: &str = concat!("palisade-loadtest/", env!("CARGO_PKG_VERSION"));

/// A request to send.
pub struct Outgoing {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, String)>,
    /// The body and, for JSON, its media type.
    pub body: Option<(Vec<u8>, Option<&'static str>)>,
}

/// An answer whose body is still to be read.
pub enum Answer {
    Plain(hyper::Response<Incoming>, Instant),
    /// reqwest keeps the deadline itself.
    Tls(reqwest::Response),
}

impl Answer {
    pub fn status(&self) -> u16 {
        match self {
            Answer::Plain(r, _) => r.status().as_u16(),
            Answer::Tls(r) => r.status().as_u16(),
        }
    }

    /// The head's size on the wire, near enough: the status line and the headers.
    pub fn head_bytes(&self) -> usize {
        let headers = match self {
            Answer::Plain(r, _) => r.headers(),
            Answer::Tls(r) => r.headers(),
        };
        17 + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
    }

    /// The whole body, within what is left of the request's deadline.
    pub async fn bytes(self) -> Result<Bytes, String> {
        match self {
            Answer::Plain(r, deadline) => {
                tokio::time::timeout_at(deadline, r.into_body().collect())
                    .await
                    .map_err(|_| "timed out reading the body".to_owned())?
                    .map(|c| c.to_bytes())
                    .map_err(|e| e.to_string())
            }
            Answer::Tls(r) => r.bytes().await.map_err(|e| e.to_string()),
        }
    }

    /// The next piece of a streamed body; none at its end. No deadline: a stream is
    /// held as long as its step wants.
    pub async fn chunk(&mut self) -> Option<Bytes> {
        match self {
            Answer::Plain(r, _) => loop {
                match r.body_mut().frame().await? {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data() {
                            return Some(data);
                        }
                    }
                    Err(_) => return None,
                }
            },
            Answer::Tls(r) => r.chunk().await.ok().flatten(),
        }
    }
}

/// One VU's connections.
pub struct Http {
    timeout: Duration,
    plain: Option<(String, SendRequest<Full<Bytes>>)>,
    tls: Option<reqwest::Client>,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        Http {
            timeout,
            plain: None,
            tls: None,
        }
    }

    /// Sends `out`; with `own_connection`, over a new connection used for this answer
    /// alone (a held stream, while the VU's connection carries its other requests).
    pub async fn send(&mut self, out: Outgoing, own_connection: bool) -> Result<Answer, String> {
        let deadline = Instant::now() + self.timeout;
        let uri: Uri = out.url.parse().map_err(|e| format!("`{}`: {e}", out.url))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return self.send_tls(out).await,
            _ => return Err(format!("`{}`: not an http or https URL", out.url)),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{}`: no host", out.url))?
            .as_str()
            .to_owned();
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let mut req = Request::builder().method(out.method).uri(path);
        let headers = req.headers_mut().ok_or("a request that cannot be built")?;
        headers.insert(header::HOST, value(&authority)?);
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        for (name, v) in &out.headers {
            headers.append(name.clone(), value(v)?);
        }
        let body = match out.body {
            Some((bytes, media)) => {
                if let Some(media) = media {
                    headers
                        .entry(header::CONTENT_TYPE)
                        .or_insert(HeaderValue::from_static(media));
                }
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;

        let sent = async {
            let mut own;
            let sender = if own_connection {
                own = connect(&authority).await?;
                &mut own
            } else {
                self.connection(&authority).await?
            };
            sender.send_request(req).await.map_err(|e| error_chain(&e))
        };
        match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(resp)) => Ok(Answer::Plain(resp, deadline)),
            Ok(Err(e)) => {
                self.plain = None;
                Err(e)
            }
            Err(_) => {
                self.plain = None;
                Err(format!("request timeout after {:?}", self.timeout))
            }
        }
    }

    /// The VU's connection to `authority`, made again if the server closed it.
    async fn connection(
        &mut self,
        authority: &str,
    ) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        let usable = match &mut self.plain {
            Some((a, s)) if a == authority && !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !usable {
            self.plain = Some((authority.to_owned(), connect(authority).await?));
        }
        match &mut self.plain {
            Some((_, s)) => Ok(s),
            None => Err("no connection".into()),
        }
    }

    async fn send_tls(&mut self, out: Outgoing) -> Result<Answer, String> {
        if self.tls.is_none() {
            self.tls = Some(
                reqwest::Client::builder()
                    .timeout(self.timeout)
                    .no_proxy()
                    .tcp_nodelay(true)
                    .user_agent(USER_AGENT)
                    .build()
                    .map_err(|e| format!("HTTPS client: {e}"))?,
            );
        }
        let client = self.tls.as_ref().ok_or("no HTTPS client")?;
        let mut req = client.request(out.method, &out.url);
        for (name, v) in out.headers {
            req = req.header(name, v);
        }
        if let Some((bytes, media)) = out.body {
            if let Some(media) = media {
                req = req.header(header::CONTENT_TYPE, media);
            }
            req = req.body(bytes);
        }
        let resp = req.send().await.map_err(|e| error_chain(&e))?;
        Ok(Answer::Tls(resp))
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {authority}: {e}"))?;
    // The connection's task ends when the server closes it or the sender is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn value(v: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(v).map_err(|_| format!("`{v}` is not a valid header value"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
