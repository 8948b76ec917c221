//! One outbox message (opened) → one mail: the template of its purpose rendered with its link,
//! code and expiry (`linktoken_core::mail`), as multipart/alternative text and HTML, with a
//! stable Message-ID and, for one-click purposes, the RFC 8058 unsubscribe headers. The token
//! appears in no header but List-Unsubscribe.

use super::outbox::Claimed;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use linktoken_core::mail::{self, Fields, Template};
use linktoken_core::mailbox::Secret;
use std::collections::HashMap;
use std::path::Path;

/// The templates: per purpose from `--templates DIR`, else the built-in one.
pub struct Templates {
    builtin: Template,
    by_purpose: HashMap<String, Template>,
}

impl Templates {
    /// Reads `<purpose>.subject`, `<purpose>.txt` and `<purpose>.html` from `dir`; a part that is
    /// missing is the built-in one. Any file that does not parse stops the mailer at startup.
    pub fn load(dir: Option<&Path>) -> Result<Templates, String> {
        let mut by_purpose = HashMap::new();
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("--templates {}: {e}", dir.display()))?;
            let mut purposes = std::collections::BTreeSet::new();
            for entry in entries {
                let path = entry
                    .map_err(|e| format!("--templates {}: {e}", dir.display()))?
                    .path();
                let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                    continue;
                };
                if matches!(ext.to_str(), Some("subject" | "txt" | "html")) {
                    if let Some(stem) = stem.to_str() {
                        purposes.insert(stem.to_owned());
                    }
                }
            }
            for purpose in purposes {
                let part = |ext: &str, default: &str| -> Result<String, String> {
                    let path = dir.join(format!("{purpose}.{ext}"));
                    match std::fs::read_to_string(&path) {
                        Ok(text) => Ok(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Ok(default.to_owned())
                        }
                        Err(e) => Err(format!("{}: {e}", path.display())),
                    }
                };
                let template = Template::parse(
                    &dir.join(&purpose).display().to_string(),
                    &part("subject", mail::DEFAULT_SUBJECT)?,
                    &part("txt", mail::DEFAULT_TEXT)?,
                    &part("html", mail::DEFAULT_HTML)?,
                )
                .map_err(|e| e.to_string())?;
                by_purpose.insert(purpose, template);
            }
        }
        Ok(Templates {
            builtin: Template::builtin(),
            by_purpose,
        })
    }

    pub fn count(&self) -> usize {
        self.by_purpose.len()
    }

    fn of(&self, purpose: &str) -> &Template {
        self.by_purpose.get(purpose).unwrap_or(&self.builtin)
    }
}

/// What every mail shares.
pub struct Sender {
    pub from: Mailbox,
    /// `--public-url` without a trailing slash.
    pub public_url: String,
    pub templates: Templates,
}

/// Why a message cannot become a mail (retrying does not help).
pub struct Unsendable(pub String);

impl Sender {
    pub fn new(from: &str, public_url: &str, templates: Templates) -> Result<Sender, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("--from: not a mail address ({e})"))?;
        let url =
            url::Url::parse(public_url).map_err(|e| format!("--public-url: not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(
                "--public-url: an http:// or https:// URL with a host, without user info, query or fragment"
                    .into(),
            );
        }
        Ok(Sender {
            from,
            public_url: url.as_str().trim_end_matches('/').to_owned(),
            templates,
        })
    }

    /// The mail for a claimed message and its opened secret.
    pub fn compose(&self, m: &Claimed, secret: &Secret) -> Result<Message, Unsendable> {
        let to: Address = m
            .address
            .trim()
            .parse()
            .map_err(|_| Unsendable("the address is not a valid mail address".into()))?;
        let link = format!("{}/t/{}", self.public_url, secret.token);
        let fields = Fields {
            link: link.clone(),
            code: secret.code.clone(),
            code_url: format!("{}/code/{}", self.public_url, m.purpose),
            expires: m.expires.clone(),
            expires_in: mail::expires_in(m.expires_in),
            subject: m.subject.clone(),
            purpose: m.purpose.clone(),
        };
        let rendered = self.templates.of(&m.purpose).render(&fields);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            .date_now()
            .message_id(Some(mail::message_id(&m.sealed, self.from.email.domain())))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        if m.one_click {
            // RFC 8058: the gateway accepts exactly this POST on the link without a browser.
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{link}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| Unsendable(format!("the mail cannot be built: {e}")))
    }
}
