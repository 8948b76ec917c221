//! The landing page of a purpose: what the gateway shows for a link and which form fields a
//! redemption needs. Stored as jsonb next to the purpose (`linktoken.set_page`), validated here
//! when it is set, and used again to check a submitted form before anything is consumed.
//!
//! ```json
//! {"title": "Choose a new password", "text": "…", "button": "Set password",
//!  "fields": [{"name": "password", "type": "password", "label": "New password",
//!              "required": true, "minlength": 12}],
//!  "success_url": "/signed-in", "success_title": "Done", "success_text": "…",
//!  "one_click": false}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Most fields a page may have.
pub const MAX_FIELDS: usize = 50;
/// Longest text (title, text, labels) in bytes.
pub const MAX_TEXT: usize = 4000;

/// Field input types the gateway renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Email,
    Password,
    Number,
    Textarea,
    Checkbox,
    Radio,
    Select,
}

/// One choice of a radio or select field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// One form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type", default = "default_type")]
    pub kind: FieldType,
    pub label: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minlength: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// Another field whose value this one must equal ("repeat the password").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

fn default_type() -> FieldType {
    FieldType::Text
}

/// A purpose's landing page. Every part is optional; the gateway fills in plain defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Same-origin path the browser is sent to (303) after a successful redemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_text: Option<String>,
    /// RFC 8058 one-click: a POST with the body `List-Unsubscribe=One-Click` redeems without
    /// the fields (mail providers send exactly that, without cookies).
    #[serde(default)]
    pub one_click: bool,
    /// Label of the confirmation checkbox added to pages without a required field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_label: Option<String>,
    /// Label of the subject field on the typed-code form (`/code/{purpose}`), e.g. "Email address".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_label: Option<String>,
    /// Label of the one field of the request form (`/request/{purpose}`), e.g. "Email address".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_label: Option<String>,
    /// Text of the request form (the landing page's `text` speaks of a link already received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_text: Option<String>,
    /// Subject line of the mail `linktoken.request` sends (default: the title, else the
    /// purpose's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_subject: Option<String>,
}

/// Names of the two fields of the typed-code form.
pub const SUBJECT_FIELD: &str = "subject";
pub const CODE_FIELD: &str = "code";

/// Name of the confirmation checkbox added to pages that have no required field of their own.
pub const CONFIRM_FIELD: &str = "confirm";

/// Name of the one field of the request form (`/request/{purpose}`).
pub const IDENTIFIER_FIELD: &str = "identifier";
/// Its label when the page sets no `identifier_label`.
pub const DEFAULT_IDENTIFIER_LABEL: &str = "Email address";

/// Why a page definition or a submitted form was refused; the text is shown to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn refuse<T>(msg: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(msg.into()))
}

/// Is `url` a same-origin path (`/…`, not `//host` nor `/\host`)?
pub fn is_local_path(url: &str) -> bool {
    url.starts_with('/')
        && !url.starts_with("//")
        && !url.starts_with("/\\")
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn field_name_ok(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && name.len() <= 63
}

impl Page {
    /// Parses and checks a page definition.
    pub fn from_json(value: &Value) -> Result<Page, Refused> {
        let page: Page = serde_json::from_value(value.clone())
            .map_err(|e| Refused(format!("page is not a valid page definition: {e}")))?;
        page.check()?;
        Ok(page)
    }

    fn check(&self) -> Result<(), Refused> {
        let texts = [
            &self.title,
            &self.text,
            &self.button,
            &self.success_title,
            &self.success_text,
            &self.confirm_label,
            &self.subject_label,
            &self.identifier_label,
            &self.request_text,
            &self.mail_subject,
        ];
        if self
            .mail_subject
            .as_ref()
            .is_some_and(|t| t.chars().any(char::is_control))
        {
            return refuse("mail_subject must be one line without control characters");
        }
        if texts
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_TEXT))
        {
            return refuse(format!("page texts must be at most {MAX_TEXT} bytes"));
        }
        if self.fields.len() > MAX_FIELDS {
            return refuse(format!("a page has at most {MAX_FIELDS} fields"));
        }
        if let Some(url) = &self.success_url {
            if !is_local_path(url) {
                return refuse("success_url must be a same-origin path starting with /");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if f.name == CONFIRM_FIELD && !f.required {
                return refuse(format!(
                    "field name {CONFIRM_FIELD:?} is reserved for the confirmation checkbox"
                ));
            }
            if f.name == SUBJECT_FIELD || f.name == CODE_FIELD {
                return refuse(format!(
                    "field name {:?} is reserved for the typed-code form",
                    f.name
                ));
            }
            if !field_name_ok(&f.name) {
                return refuse(format!(
                    "field name {:?} must start with a lower-case letter and contain only a-z, 0-9 and _",
                    f.name
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return refuse(format!("field {:?} appears twice", f.name));
            }
            if f.label.len() > MAX_TEXT {
                return refuse(format!("label of field {:?} is too long", f.name));
            }
            let has_choices = matches!(f.kind, FieldType::Radio | FieldType::Select);
            if has_choices && f.options.is_empty() {
                return refuse(format!("field {:?} needs options", f.name));
            }
            if !has_choices && !f.options.is_empty() {
                return refuse(format!("field {:?} cannot have options", f.name));
            }
        }
        for f in &self.fields {
            if let Some(other) = &f.same_as {
                if !self.fields.iter().any(|g| &g.name == other) {
                    return refuse(format!(
                        "field {:?} refers to unknown field {other:?}",
                        f.name
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// A page with two password fields (the second repeating the first), for the tests of the
    /// modules that use pages.
    pub(crate) fn reset_page() -> Page {
        Page::from_json(&json!({
            "title": "New password",
            "fields": [
                {"name": "password", "type": "password", "label": "New password", "required": true, "minlength": 12},
                {"name": "password2", "type": "password", "label": "Repeat", "required": true, "same_as": "password"}
            ],
            "success_url": "/signed-in"
        }))
        .unwrap()
    }

    pub(crate) fn form(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn empty_page_is_valid() {
        assert_eq!(Page::from_json(&json!({})).unwrap(), Page::default());
    }

    #[test]
    fn bad_definitions_are_refused() {
        for bad in [
            json!({"success_url": "https://evil.example/"}),
            json!({"success_url": "//evil.example/"}),
            json!({"success_url": "/\\evil.example"}),
            json!({"fields": [{"name": "Bad", "label": "x"}]}),
            json!({"fields": [{"name": "a", "label": "x"}, {"name": "a", "label": "y"}]}),
            json!({"fields": [{"name": "a", "type": "radio", "label": "x"}]}),
            json!({"fields": [{"name": "a", "type": "color", "label": "x"}]}),
            json!({"fields": [{"name": "a", "label": "x", "same_as": "b"}]}),
            json!({"titel": "typo"}),
            json!("not an object"),
        ] {
            assert!(Page::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_paths() {
        assert!(is_local_path("/welcome?x=1"));
        assert!(!is_local_path("welcome"));
        assert!(!is_local_path("//evil"));
        assert!(!is_local_path("/ x"));
        assert!(!is_local_path("/\nx"));
    }
}
