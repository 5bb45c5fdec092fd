//! Where mail goes: an SMTP server (`SMTP_URL`), or, in development without one, `.eml`
//! files under the data directory.
//!
//! `smtp://[user:password@]host[:587]` sends with STARTTLS and refuses a server that
//! does not offer it; `smtps://…[:465]` speaks TLS from the first byte;
//! `smtp://…?tls=none` sends in the clear (a relay on the same host). Certificates are
//! checked against the web's roots, plus the authority in `SMTP_CA_FILE` when given.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS, required.
    Starttls,
    /// TLS from the start (SMTPS).
    Implicit,
    /// None: only for a relay on the same host.
    None,
}

/// An SMTP server, from `SMTP_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    /// A PEM certificate authority trusted beside the web's roots (`SMTP_CA_FILE`).
    pub extra_root: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    /// Whether the server is on this host (where `tls=none` may be fine).
    pub fn is_local(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Reads `smtp://`, `smtps://` URLs as described above.
    pub fn parse(url: &str) -> Result<SmtpSettings, String> {
        let url = reqwest::Url::parse(url).map_err(|_| "not a URL".to_owned())?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (Security::Starttls, 587),
            "smtps" => (Security::Implicit, 465),
            other => return Err(format!("`{other}:` is not smtp: or smtps:")),
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), security) {
                ("tls", "none", Security::Starttls) => security = Security::None,
                ("tls", "required", Security::Starttls) => {}
                _ => return Err(format!("unknown option `{k}={v}` (only tls=none)")),
            }
        }
        let host = url.host_str().ok_or("no host")?.to_owned();
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the credentials are not valid UTF-8".to_owned())
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) => Some((decode(user)?, decode(password)?)),
            (_, None) => return Err("a user without a password".to_owned()),
        };
        if security == Security::None && credentials.is_some() {
            return Err("tls=none would send the password in the clear".to_owned());
        }
        Ok(SmtpSettings {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
            extra_root: None,
        })
    }
}

/// `%xx` escapes of a URL's user or password decoded.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

/// Where mail is sent.
#[derive(Clone, Debug)]
pub enum TransportSettings {
    Smtp(SmtpSettings),
    /// Development without a mail server: each message is a file in this directory.
    Files(PathBuf),
}

/// How long a conversation with the SMTP server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Transport {
    pub(crate) fn new(settings: &TransportSettings) -> Result<Transport, String> {
        let smtp = match settings {
            TransportSettings::Files(dir) => return Ok(Transport::Files(dir.clone())),
            TransportSettings::Smtp(smtp) => smtp,
        };
        let tls = || {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(pem) = &smtp.extra_root {
                let ca = Certificate::from_pem(pem).map_err(|e| format!("SMTP_CA_FILE: {e}"))?;
                params = params.add_root_certificate(ca);
            }
            params.build_rustls().map_err(|e| format!("TLS: {e}"))
        };
        let tls = match smtp.security {
            Security::Starttls => Tls::Required(tls()?),
            Security::Implicit => Tls::Wrapper(tls()?),
            Security::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    /// Sends `message`; for a file, where it was written.
    pub(crate) async fn send(&self, message: Message) -> Result<Option<PathBuf>, String> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| None)
                .map_err(|e| format!("SMTP: {e}")),
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                let file = dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                tokio::fs::write(&file, message.formatted())
                    .await
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                Ok(Some(file))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_read_with_safe_defaults() {
        let s = SmtpSettings::parse("smtp://mailer:p%40ss@mail.example.com").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mail.example.com", 587, Security::Starttls)
        );
        assert_eq!(
            s.credentials,
            Some(("mailer".to_owned(), "p@ss".to_owned()))
        );
        assert!(
            !format!("{s:?}").contains("p@ss"),
            "the password stays out of Debug"
        );
        let s = SmtpSettings::parse("smtps://mail.example.com").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        let s = SmtpSettings::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (s.port, s.security, s.credentials),
            (2525, Security::None, None)
        );
        for bad in [
            "http://mail.example.com",
            "smtps://mail.example.com?tls=none",
            "smtp://user@mail.example.com",
            "smtp://mail.example.com?starttls=maybe",
            "smtp://user:pw@mail.example.com?tls=none",
            "not a url",
        ] {
            assert!(SmtpSettings::parse(bad).is_err(), "{bad}");
        }
    }
}
