//! A small client for the identity API, and an RFC 6238 TOTP written here from the RFC
//! (HMAC-SHA1, dynamic truncation), independent of the server's totp-rs.

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, client};

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// An answer: status, headers, JSON body (`Null` when there is none).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts the status (showing the body when it differs) and hands the answer on.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Answer {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    /// A string field of the body, which must be there.
    #[track_caller]
    pub fn text(&self, field: &str) -> String {
        token(&self.body, field)
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// `name=value` of each Set-Cookie.
    pub fn cookies(&self) -> HashMap<String, String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            base: server.url(""),
            http: client(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(Method::GET, path, None, &[("authorization", &auth)])
            .await
    }

    /// The body of a `GET` as text (`/metrics`).
    pub async fn text_as(&self, path: &str, token: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    }

    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(method, path, body, &[("authorization", &auth)])
            .await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Answer {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Answer {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and logs in; returns the login answer's body (the tokens).
    pub async fn signed_up(&self, email: &str, password: &str) -> Value {
        self.register(email, password, "Test User")
            .await
            .expect(StatusCode::CREATED);
        self.login(email, password)
            .await
            .expect(StatusCode::OK)
            .body
    }

    /// The code step of a login with 2FA on.
    pub async fn login_mfa(&self, mfa_token: &str, code: &str) -> Answer {
        self.post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": mfa_token, "code": code}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Answer {
        self.get_as("/api/v1/me", access_token).await
    }

    pub async fn patch_me(&self, access_token: &str, body: Value) -> Answer {
        self.send_as(Method::PATCH, "/api/v1/me", access_token, Some(body))
            .await
    }

    pub async fn logout(&self, access_token: &str) -> Answer {
        self.send_as(Method::POST, "/api/v1/auth/logout", access_token, None)
            .await
    }

    /// Deletes the account, confirmed with `password` and the word `confirm`.
    pub async fn delete_me(&self, access_token: &str, password: &str, confirm: &str) -> Answer {
        self.send_as(
            Method::DELETE,
            "/api/v1/me",
            access_token,
            Some(json!({"password": password, "confirm": confirm})),
        )
        .await
    }

    /// Starts 2FA enrolment, confirmed with `password`.
    pub async fn setup_2fa(&self, access_token: &str, password: &str) -> Answer {
        self.send_as(
            Method::POST,
            "/api/v1/me/2fa/setup",
            access_token,
            Some(json!({"password": password})),
        )
        .await
    }

    /// A second factor again inside the session; the answer holds a new access token.
    pub async fn step_up(&self, access_token: &str, code: &str) -> Answer {
        self.send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            access_token,
            Some(json!({"code": code})),
        )
        .await
    }

    /// Turns 2FA on for the signed-in user; returns the TOTP secret and the backup codes.
    pub async fn enable_2fa(&self, access_token: &str, password: &str) -> (String, Vec<String>) {
        let setup = self
            .setup_2fa(access_token, password)
            .await
            .expect(StatusCode::OK);
        let secret = setup.text("secret");
        let confirm = self
            .send_as(
                Method::POST,
                "/api/v1/me/2fa/confirm",
                access_token,
                Some(json!({"code": totp(&secret, now())})),
            )
            .await
            .expect(StatusCode::OK);
        let codes = confirm.body["backup_codes"]
            .as_array()
            .expect("backup codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        (secret, codes)
    }
}

pub fn token(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

/// RFC 4648 base32 (no padding) to bytes.
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The TOTP code of `secret` (base32) at `unix` seconds: SHA-1, 30 s, 6 digits.
pub fn totp(secret: &str, unix: u64) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&base32_decode(secret)).expect("key");
    mac.update(&(unix / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

#[test]
fn the_test_totp_matches_rfc_6238() {
    // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits truncated to 6.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp(secret, 59), "287082");
    assert_eq!(totp(secret, 1_111_111_109), "081804");
}
