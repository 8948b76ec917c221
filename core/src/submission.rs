//! A submitted form checked against the page it was submitted from, before anything is
//! consumed: required fields present, minimum lengths, choices from the list, repeated fields
//! equal; and RFC 8058's one-click body, accepted only by pages with `"one_click": true`.

use crate::page::{refuse, FieldType, Page, Refused};
use serde_json::{Map, Value};

/// The form a one-click unsubscribe POST carries (RFC 8058).
pub const ONE_CLICK_FIELD: &str = "List-Unsubscribe";
pub const ONE_CLICK_VALUE: &str = "One-Click";

/// True for a form that is exactly `List-Unsubscribe=One-Click`.
pub fn is_one_click(form: &Map<String, Value>) -> bool {
    form.len() == 1 && form.get(ONE_CLICK_FIELD).and_then(Value::as_str) == Some(ONE_CLICK_VALUE)
}

impl Page {
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
    use crate::page::tests::{form, reset_page};
    use crate::page::Page;
    use serde_json::json;

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
}
