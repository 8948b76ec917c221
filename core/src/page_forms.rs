//! The pages the gateway derives from a purpose's page: its landing form (with the
//! confirmation checkbox scanners cannot tick), the typed-code form, the request form and the
//! request form's answer.

use crate::page::{
    Field, FieldType, Page, CODE_FIELD, CONFIRM_FIELD, DEFAULT_IDENTIFIER_LABEL, IDENTIFIER_FIELD,
    SUBJECT_FIELD,
};

impl Page {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::tests::{form, reset_page};
    use serde_json::json;

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
}
