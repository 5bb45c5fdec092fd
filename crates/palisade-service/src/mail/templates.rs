//! The messages' templates (`templates/mail/*.jinja`, built in): one per kind, with a
//! `subject`, a `text` and an `html` block, so both parts of a message come from one
//! file. Values are escaped in the HTML part (a name like `<b>` shows as written) and
//! left as they are in the subject and the text.

use minijinja::{AutoEscape, Environment, Value};

/// A kind of message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    VerifyEmail,
    ResetPassword,
    ConfirmEmailChange,
    SecurityNotice,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::VerifyEmail => "verify_email",
            Template::ResetPassword => "reset_password",
            Template::ConfirmEmailChange => "confirm_email_change",
            Template::SecurityNotice => "security_notice",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Template::VerifyEmail => include_str!("../../templates/mail/verify_email.jinja"),
            Template::ResetPassword => include_str!("../../templates/mail/reset_password.jinja"),
            Template::ConfirmEmailChange => {
                include_str!("../../templates/mail/confirm_email_change.jinja")
            }
            Template::SecurityNotice => {
                include_str!("../../templates/mail/security_notice.jinja")
            }
        }
    }
}

const ALL: [Template; 4] = [
    Template::VerifyEmail,
    Template::ResetPassword,
    Template::ConfirmEmailChange,
    Template::SecurityNotice,
];

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The templates, parsed once.
pub struct Templates {
    /// Renders the subject and the text: nothing escaped.
    plain: Environment<'static>,
    /// Renders the HTML part: every value escaped.
    html: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Templates, minijinja::Error> {
        let mut plain = Environment::new();
        plain.set_auto_escape_callback(|_| AutoEscape::None);
        let mut html = Environment::new();
        html.set_auto_escape_callback(|_| AutoEscape::Html);
        for t in ALL {
            plain.add_template(t.name(), t.source())?;
            html.add_template(t.name(), t.source())?;
        }
        Ok(Templates { plain, html })
    }

    pub fn render(&self, template: Template, context: Value) -> Result<Rendered, minijinja::Error> {
        let mut plain = self
            .plain
            .get_template(template.name())?
            .render_captured(context.clone())?;
        let subject = plain.with_state_mut(|s| s.render_block("subject"))?;
        let text = plain.with_state_mut(|s| s.render_block("text"))?;
        let html = self
            .html
            .get_template(template.name())?
            .render_captured(context)?
            .with_state_mut(|s| s.render_block("html"))?;
        Ok(Rendered {
            // A subject is one line, whatever a value held.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: text.trim().to_owned() + "\n",
            html: html.trim().to_owned() + "\n",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_renders_three_parts_and_escapes_only_html() {
        let t = Templates::new().expect("templates");
        for template in ALL {
            let r = t
                .render(
                    template,
                    context! {
                        name => "<b>Ada</b> & co",
                        email => "ada@example.com",
                        link => "https://app.example.com/x?token=abc",
                        title => "Password\nchanged",
                        body => "Your password was changed.",
                    },
                )
                .expect("render");
            assert!(!r.subject.is_empty() && !r.subject.contains('\n'), "{r:?}");
            assert!(
                r.text.contains("<b>Ada</b> & co"),
                "{template:?}: {}",
                r.text
            );
            assert!(
                r.html.contains("&lt;b&gt;Ada&lt;&#x2f;b&gt; &amp; co"),
                "{template:?}: {}",
                r.html
            );
            assert!(!r.html.contains("<b>Ada"), "{template:?}");
        }
        let r = t
            .render(
                Template::ResetPassword,
                context! { name => "Ada", link => "https://app.example.com/reset?token=abc" },
            )
            .unwrap();
        assert!(r.text.contains("https://app.example.com/reset?token=abc"));
        assert!(
            r.html
                .contains("href=\"https:&#x2f;&#x2f;app.example.com&#x2f;reset?token=abc\"")
        );
    }
}
