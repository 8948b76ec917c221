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
use serde_json::{Map, Value};
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

fn refuse<T>(msg: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(msg.into()))
}

/// The form a one-click unsubscribe POST carries (RFC 8058).
pub const ONE_CLICK_FIELD: &str = "List-Unsubscribe";
pub const ONE_CLICK_VALUE: &str = "One-Click";

/// True for a form that is exactly `List-Unsubscribe=One-Click`.
pub fn is_one_click(form: &Map<String, Value>) -> bool {
    form.len() == 1 && form.get(ONE_CLICK_FIELD).and_then(Value::as_str) == Some(ONE_CLICK_VALUE)
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

    /// The fields a person must fill in. A page without a required field gets a required
    /// confirmation checkbox: mail scanners that submit forms with their default values must
    /// never be able to redeem, so every redemption needs an input only a person gives.
    pub fn form_fields(&self) -> Vec<Field> {
        let mut fields = self.fields.clone();
        if !fields.iter().any(|f| f.required) {
            fields.push(Field {
                name: CONFIRM_FIELD.to_owned(),
                kind: FieldType::Checkbox,
                label: self
                    .confirm_label
                    .clone()
                    .unwrap_or_else(|| "Yes, I want to continue".to_owned()),
                required: true,
                minlength: None,
                options: Vec::new(),
                same_as: None,
            });
        }
        fields
    }

    /// The page of the typed-code form: the subject and the code first (both required, so no
    /// confirmation checkbox is added), then the purpose's own fields.
    pub fn code_form(&self) -> Page {
        let text = |name: &str, label: String, minlength: Option<u32>| Field {
            name: name.to_owned(),
            kind: FieldType::Text,
            label,
            required: true,
            minlength,
            options: Vec::new(),
            same_as: None,
        };
        let mut fields = vec![
            text(
                SUBJECT_FIELD,
                self.subject_label
                    .clone()
                    .unwrap_or_else(|| "Email address".to_owned()),
                None,
            ),
            text(CODE_FIELD, "Code from the email".to_owned(), Some(6)),
        ];
        fields.extend(self.fields.iter().cloned());
        Page {
            title: Some(
                self.title
                    .clone()
                    .unwrap_or_else(|| "Enter your code".to_owned()),
            ),
            text: Some("Enter the code from the email.".to_owned()),
            fields,
            ..self.clone()
        }
    }

    /// The label of the request form's field: `identifier_label`, else "Email address".
    pub fn identifier_label(&self) -> &str {
        self.identifier_label
            .as_deref()
            .unwrap_or(DEFAULT_IDENTIFIER_LABEL)
    }

    /// The page of the request form (`/request/{purpose}`): exactly one required field,
    /// `identifier` (so no confirmation checkbox is added), labelled [`Page::identifier_label`];
    /// an email input unless the page names its own label (which may ask for a user name).
    /// The page's title and `request_text` (never its `text`, which speaks of a link already
    /// received), with defaults; none of its own fields.
    pub fn request_form(&self) -> Page {
        Page {
            title: Some(
                self.title
                    .clone()
                    .unwrap_or_else(|| "We'll email you a link".to_owned()),
            ),
            text: Some(self.request_text.clone().unwrap_or_else(|| {
                "We'll email you a link. It works once, for a limited time.".to_owned()
            })),
            button: Some("Email me a link".to_owned()),
            fields: vec![Field {
                name: IDENTIFIER_FIELD.to_owned(),
                kind: if self.identifier_label.is_some() {
                    FieldType::Text
                } else {
                    FieldType::Email
                },
                label: self.identifier_label().to_owned(),
                required: true,
                minlength: None,
                options: Vec::new(),
                same_as: None,
            }],
            ..Page::default()
        }
    }

    /// What the request form answers, whatever was typed: known, unknown, throttled, capped
    /// or empty (an answer that differed would tell anyone which identifiers are known). As a
    /// success page: `success_title` and `success_text`.
    pub fn request_sent(&self) -> Page {
        Page {
            success_title: Some("Check your email".to_owned()),
            success_text: Some(format!(
                "If that {} is known here, a link is on its way. It can take a few minutes to arrive; look in your spam folder too.",
                self.identifier_label().to_lowercase()
            )),
            ..Page::default()
        }
    }

    /// Checks a submitted form against the fields: required ones present, minimum lengths,
    /// choices from the list, repeated fields equal. The message names the field's label.
    pub fn check_form(&self, form: &Map<String, Value>) -> Result<(), Refused> {
        if self.one_click && is_one_click(form) {
            return Ok(());
        }
        for f in &self.form_fields() {
            let value = form.get(&f.name).and_then(Value::as_str).unwrap_or("");
            if value.is_empty() {
                if f.required {
                    let verb = match f.kind {
                        FieldType::Checkbox => "tick",
                        FieldType::Radio | FieldType::Select => "choose an answer for",
                        _ => "fill in",
                    };
                    return refuse(format!("Please {verb} “{}”.", f.label));
                }
                continue;
            }
            if let Some(min) = f.minlength {
                if (value.chars().count() as u64) < u64::from(min) {
                    return refuse(format!(
                        "“{}” must be at least {min} characters long.",
                        f.label
                    ));
                }
            }
            if !f.options.is_empty() && !f.options.iter().any(|c| c.value == value) {
                return refuse(format!(
                    "Please choose one of the answers for “{}”.",
                    f.label
                ));
            }
            if let Some(other) = &f.same_as {
                if form.get(other).and_then(Value::as_str) != Some(value) {
                    return refuse(format!("“{}” does not match.", f.label));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reset_page() -> Page {
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

    fn form(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn empty_page_is_valid() {
        assert_eq!(Page::from_json(&json!({})).unwrap(), Page::default());
    }

    #[test]
    fn forms_are_checked_against_fields() {
        let p = reset_page();
        assert!(p.check_form(&form(json!({}))).is_err());
        let short = p.check_form(&form(json!({"password": "short", "password2": "short"})));
        assert_eq!(
            short.unwrap_err().0,
            "“New password” must be at least 12 characters long."
        );
        let mismatch = p.check_form(&form(
            json!({"password": "correct horse", "password2": "other horse!!"}),
        ));
        assert_eq!(mismatch.unwrap_err().0, "“Repeat” does not match.");
        assert!(p
            .check_form(&form(
                json!({"password": "correct horse", "password2": "correct horse"})
            ))
            .is_ok());
    }

    #[test]
    fn choices_must_come_from_the_list() {
        let p = Page::from_json(&json!({"fields": [{"name": "q1", "type": "radio", "label": "Q1", "required": true,
            "options": [{"value": "0", "label": "Not at all"}, {"value": "3", "label": "Nearly every day"}]}]}))
        .unwrap();
        assert!(p.check_form(&form(json!({"q1": "3"}))).is_ok());
        assert!(p.check_form(&form(json!({"q1": "7"}))).is_err());
        assert!(p.check_form(&form(json!({}))).is_err());
    }

    #[test]
    fn one_click_only_where_allowed() {
        let one = form(json!({"List-Unsubscribe": "One-Click"}));
        let confirm =
            json!([{"name": "confirm", "type": "checkbox", "label": "Yes", "required": true}]);
        let with = Page::from_json(&json!({"one_click": true, "fields": confirm})).unwrap();
        let without = Page::from_json(&json!({"fields": confirm})).unwrap();
        assert!(with.check_form(&one).is_ok());
        assert!(without.check_form(&one).is_err());
        assert!(with.check_form(&form(json!({}))).is_err());
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
    fn pages_without_required_fields_need_a_confirmation() {
        let plain = Page::default();
        assert_eq!(plain.form_fields().len(), 1);
        assert!(
            plain.check_form(&form(json!({}))).is_err(),
            "a scanner's empty POST"
        );
        assert!(plain.check_form(&form(json!({"confirm": "yes"}))).is_ok());
        let optional =
            Page::from_json(&json!({"fields": [{"name": "note", "label": "Note"}]})).unwrap();
        assert_eq!(optional.form_fields().len(), 2);
        assert!(optional.check_form(&form(json!({"note": "hi"}))).is_err());
        assert_eq!(
            reset_page().form_fields().len(),
            2,
            "required fields suffice"
        );
    }

    #[test]
    fn the_code_form_asks_for_subject_and_code_first() {
        let page = Page::from_json(&json!({"subject_label": "Your email",
            "fields": [{"name": "password", "type": "password", "label": "New password", "required": true}]}))
        .unwrap();
        let code_form = page.code_form();
        let names: Vec<_> = code_form
            .form_fields()
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, ["subject", "code", "password"]);
        assert_eq!(code_form.fields[0].label, "Your email");
        assert!(code_form
            .check_form(&form(json!({"subject": "a@example.org", "code": "123456"})))
            .is_err());
        assert!(Page::from_json(&json!({"fields": [{"name": "code", "label": "x"}]})).is_err());
    }

    #[test]
    fn the_request_form_has_one_field() {
        let plain = Page::default().request_form();
        let fields = plain.form_fields();
        assert_eq!(
            fields.len(),
            1,
            "no confirmation checkbox: the field is required"
        );
        assert_eq!(fields[0].name, IDENTIFIER_FIELD);
        assert_eq!(fields[0].label, "Email address");
        assert_eq!(fields[0].kind, FieldType::Email);
        assert_eq!(plain.title.as_deref(), Some("We'll email you a link"));

        let page = Page::from_json(&json!({"title": "Sign in", "text": "Hello.", "identifier_label": "User name",
            "request_text": "Type your user name.",
            "fields": [{"name": "password", "type": "password", "label": "New password", "required": true}]}))
        .unwrap();
        let form = page.request_form();
        let names: Vec<_> = form.form_fields().iter().map(|f| f.name.clone()).collect();
        assert_eq!(
            names,
            [IDENTIFIER_FIELD],
            "the page's own fields are not asked for"
        );
        assert_eq!(form.fields[0].label, "User name");
        assert_eq!(form.fields[0].kind, FieldType::Text);
        assert_eq!(
            (form.title.as_deref(), form.text.as_deref()),
            (Some("Sign in"), Some("Type your user name."))
        );
    }

    #[test]
    fn the_request_answer_names_the_label_not_the_input() {
        let sent = Page::default().request_sent();
        assert_eq!(sent.success_title.as_deref(), Some("Check your email"));
        assert!(sent
            .success_text
            .as_deref()
            .unwrap()
            .starts_with("If that email address is known here, a link is on its way."));
        let named = Page::from_json(&json!({"identifier_label": "User name"})).unwrap();
        assert!(named
            .request_sent()
            .success_text
            .unwrap()
            .contains("that user name"));
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
