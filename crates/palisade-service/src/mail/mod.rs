//! Account e-mail (README § Account e-mail): messages rendered from their
//! [`templates`], queued as `mail.send` jobs in the transaction of what causes them,
//! and sent by the job queue through the [`transport`]: an SMTP server that is down
//! delays mail and loses none. A job's message is sealed with the server's key (its
//! link carries a token), so neither the `jobs` table nor `palisade jobs` shows it.
//!
//! Every message counts against an hourly cap per address, whoever causes it, so
//! nothing can be used to flood an inbox: [`REQUEST_CAP`] links that requests ask for
//! (verification, reset, change of address), and [`NOTICE_CAP`] security notices, the
//! rest of which are dropped. Metric: `emails_total{template,outcome}`.

pub mod templates;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
pub use lettre::message::Mailbox;
use lettre::message::MultiPart;
use palisade_auth::secretbox::SecretBox;
use palisade_store::repo::{mail_sent, now};
use palisade_store::{Db, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::jobs::{self, Handler, HandlerFuture, Job, JobError, NewJob};
pub use templates::{Rendered, Template, Templates};
use transport::Transport;
pub use transport::{Security, SmtpSettings, TransportSettings};

/// The kind of the sending jobs.
pub const KIND: &str = "mail.send";

/// Links that requests may cause to one address per hour.
pub const REQUEST_CAP: i64 = 3;

/// Security notices to one address per hour.
pub const NOTICE_CAP: i64 = 10;

/// Attempts of one message: with the queue's backoff (doubling from 1 s, at most 1 h),
/// about a day.
const ATTEMPTS: u32 = 36;

/// Which hourly cap a message counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// A link a request asked for: the caller may be told it was not sent.
    Requests,
    /// A security notice: one over the cap is dropped.
    Notices,
}

impl Cap {
    fn limit(self) -> i64 {
        match self {
            Cap::Requests => REQUEST_CAP,
            Cap::Notices => NOTICE_CAP,
        }
    }

    /// The templates that count toward it.
    fn templates(self) -> &'static [&'static str] {
        match self {
            Cap::Requests => &["verify_email", "reset_password", "confirm_email_change"],
            Cap::Notices => &["security_notice"],
        }
    }
}

#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `PALISADE_MAIL_FROM`: `Name <address>` or an address.
    pub from: Mailbox,
    /// `PALISADE_PUBLIC_URL`: where the links in mail lead, without a trailing `/`.
    pub public_url: String,
    pub transport: TransportSettings,
}

#[derive(Debug, thiserror::Error)]
#[error("mail: {0}")]
pub struct MailError(String);

/// What a job carries, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    to: String,
    message: Rendered,
}

/// Account e-mail. Cheap to clone.
#[derive(Clone)]
pub struct Mail(Arc<Inner>);

struct Inner {
    db: Db,
    secrets: SecretBox,
    settings: MailSettings,
    templates: Templates,
    transport: Transport,
}

impl Mail {
    pub fn new(db: Db, secrets: SecretBox, settings: MailSettings) -> Result<Mail, MailError> {
        let templates = Templates::new().map_err(|e| MailError(e.to_string()))?;
        let transport = Transport::new(&settings.transport).map_err(MailError)?;
        Ok(Mail(Arc::new(Inner {
            db,
            secrets,
            settings,
            templates,
            transport,
        })))
    }

    /// The link to `path` of the public site with `token` in its fragment, which
    /// browsers keep to themselves: no server's access log and no `Referer` sees it.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}#token={token}", self.0.settings.public_url)
    }

    /// Queues `template` rendered with `context` to `to` inside `tx`, counted against
    /// `cap`: `false` (nothing queued) when the cap is reached.
    pub async fn queue(
        &self,
        tx: &mut Tx,
        to: &str,
        template: Template,
        context: minijinja::Value,
        cap: Cap,
    ) -> Result<bool, StoreError> {
        let at = now();
        let recipient = recipient_key(to);
        mail_sent::lock(&mut *tx, &recipient).await?;
        let since = at - Duration::from_secs(3600);
        if mail_sent::count_since(&mut *tx, &recipient, cap.templates(), since).await?
            >= cap.limit()
        {
            metrics::counter!("emails_total", "template" => template.name(), "outcome" => "capped")
                .increment(1);
            return Ok(false);
        }
        mail_sent::record(&mut *tx, &recipient, template.name(), at).await?;
        let message =
            self.0
                .templates
                .render(template, context)
                .map_err(|e| StoreError::Corrupt {
                    table: "templates",
                    what: format!("{}: {e}", template.name()),
                })?;
        let sealed = Sealed {
            to: to.to_owned(),
            message,
        };
        let plain = serde_json::to_vec(&sealed).map_err(|e| StoreError::Corrupt {
            table: "jobs",
            what: format!("a mail that does not serialise: {e}"),
        })?;
        let payload = json!({
            "template": template.name(),
            "sealed": STANDARD.encode(self.0.secrets.seal(&plain, PURPOSE)),
        });
        jobs::enqueue(&mut *tx, NewJob::new(KIND, payload).attempts(ATTEMPTS)).await?;
        Ok(true)
    }

    /// Queues a security notice to `to` (its holder `name`) inside `tx`, within the
    /// notices' cap; `false` when it was dropped.
    pub async fn notice(
        &self,
        tx: &mut Tx,
        to: &str,
        name: &str,
        title: &str,
        body: &str,
    ) -> Result<bool, StoreError> {
        let context = minijinja::context! { name => name, title => title, body => body };
        self.queue(tx, to, Template::SecurityNotice, context, Cap::Notices)
            .await
    }

    /// Deletes what the cap no longer looks at.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        mail_sent::purge(&self.0.db, now() - Duration::from_secs(3600)).await
    }

    async fn send(&self, job: &Job) -> Result<(), JobError> {
        let template = job.payload["template"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let sealed = job.payload["sealed"]
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|s| self.0.secrets.open(&s, PURPOSE).ok())
            .and_then(|s| serde_json::from_slice::<Sealed>(&s).ok())
            .ok_or_else(|| JobError::Fatal("the message does not open with this key".into()))?;
        let message = self.message(&sealed)?;
        let outcome = self.0.transport.send(message).await;
        let label = if outcome.is_ok() { "sent" } else { "failed" };
        metrics::counter!("emails_total", "template" => template.clone(), "outcome" => label)
            .increment(1);
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(file)) => {
                // Development without a mail server: the file holds the link; the log
                // says where it is (and never the token).
                tracing::info!(template = %template, file = %file.display(), "mail written to a file (no SMTP_URL)");
                Ok(())
            }
            Err(e) => Err(JobError::Retry(e)),
        }
    }

    fn message(&self, sealed: &Sealed) -> Result<Message, JobError> {
        let to: Mailbox = sealed
            .to
            .parse()
            .map_err(|_| JobError::Fatal("not a mailbox".to_owned()))?;
        let body = MultiPart::alternative_plain_html(
            sealed.message.text.clone(),
            sealed.message.html.clone(),
        );
        Message::builder()
            .from(self.0.settings.from.clone())
            .to(to)
            .subject(sealed.message.subject.clone())
            .multipart(body)
            .map_err(|e| JobError::Fatal(format!("the message cannot be built: {e}")))
    }
}

/// What binds a sealed message to its use.
const PURPOSE: &[u8] = b"palisade mail v1";

/// How an address is counted: its SHA-256, in lower case, so the table names no one.
fn recipient_key(address: &str) -> String {
    let digest = Sha256::digest(address.trim().to_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Handler for Mail {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(self.send(job))
    }
}
