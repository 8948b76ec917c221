//! The gateway's HTML pages, rendered with minijinja from `templates/*.html` (built in with
//! `include_str!`, optionally overridden from a directory at startup). Autoescaping is on for
//! every template, whatever its name: all dynamic values (page texts, labels, the error, the
//! form action) are HTML-escaped.
//!
//! The pages are plain HTML5 with one same-origin stylesheet (`/static/style.css`, [`STYLE_CSS`]):
//! no scripts, no inline styles, no external resources, so they work under the CSP
//! `default-src 'none'; style-src 'self'`.
//!
//! Override templates get the variables documented at the top of each built-in template; they
//! may `{% extends "base.html" %}` (the built-in one or an override) and include any other
//! `*.html` file from the same directory.

use linktoken_core::page::{Choice, Field, FieldType, Page};
use minijinja::{context, AutoEscape, Environment};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;

/// The stylesheet every page links to as `/static/style.css`.
pub const STYLE_CSS: &str = include_str!("../templates/style.css");

const BUILTIN: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("landing.html", include_str!("../templates/landing.html")),
    ("success.html", include_str!("../templates/success.html")),
    ("status.html", include_str!("../templates/status.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// Shown when even the built-in template cannot be rendered (never expected).
const LAST_RESORT: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"robots\" content=\"noindex\">\n<title>Error</title>\n\
<link rel=\"stylesheet\" href=\"/static/style.css\">\n</head>\n<body>\n<main>\n\
<h1>Something went wrong</h1>\n<p>Please try again later.</p>\n</main>\n</body>\n</html>\n";

/// The page templates, ready to render.
pub struct Templates {
    env: Environment<'static>,
    /// The built-in templates, used when an override fails at render time.
    fallback: Option<Environment<'static>>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Every template is HTML, whatever its file name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env
}

fn builtin() -> Environment<'static> {
    let mut env = environment();
    for (name, source) in BUILTIN {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("built-in template {name}: {e}"));
    }
    env
}

/// One field as the landing template sees it.
#[derive(Serialize)]
struct FieldView {
    name: String,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    label: String,
    required: bool,
    minlength: Option<u32>,
    /// Previously entered value; always empty for passwords.
    value: String,
    /// Checkboxes: previously checked.
    checked: bool,
    options: Vec<OptionView>,
}

#[derive(Serialize)]
struct OptionView {
    value: String,
    label: String,
    id: String,
    selected: bool,
}

fn type_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text => "text",
        FieldType::Email => "email",
        FieldType::Password => "password",
        FieldType::Number => "number",
        FieldType::Textarea => "textarea",
        FieldType::Checkbox => "checkbox",
        FieldType::Radio => "radio",
        FieldType::Select => "select",
    }
}

/// Text split into paragraphs (at blank lines), each a list of lines.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Title and paragraphs of the page for a link that cannot be used.
fn status_texts(status: &str) -> (&'static str, &'static [&'static str]) {
    match status {
        "invalid" => (
            "Link not found",
            &[
                "This link does not work. If you copied it from the email, check that you copied the whole link.",
                "If it still does not work, request a new link from the site or app that sent it.",
            ],
        ),
        "expired" => (
            "This link has expired",
            &[
                "Links like this one only work for a limited time, and this one's time is up.",
                "Please request a new link from the site or app that sent it.",
            ],
        ),
        "used" => (
            "This link was already used",
            &[
                "This was already done, so there is nothing more to do.",
                "If it wasn't you who used the link, contact the support of the site or app that sent it, or request a new link.",
            ],
        ),
        "revoked" => (
            "This link is no longer valid",
            &[
                "A newer link was sent, or this one was cancelled.",
                "Please use the link in the newest email, or request a new one from the site or app that sent it.",
            ],
        ),
        "locked" => (
            "Too many wrong codes",
            &[
                "For your safety, codes and links for this request are locked for a while after too many wrong codes.",
                "Please wait, then request a new code from the site or app that sent it.",
            ],
        ),
        "unbound" => (
            "Open the link in the browser where you asked for it",
            &["For your security, this link only works in the browser where you asked for it. Open it there, or enter the code instead."],
        ),
        _ => (
            "This link cannot be used",
            &["Please request a new link from the site or app that sent it."],
        ),
    }
}

impl Templates {
    /// Built-in templates (`include_str!` from `../templates/*.html`). With `dir`, every `*.html`
    /// file in that directory is loaded too, and one with a built-in name (`base.html`,
    /// `landing.html`, `success.html`, `status.html`, `error.html`) replaces the built-in one.
    /// Read once, here. Errors: `dir` missing or unreadable, a file that is not UTF-8, a template
    /// that does not parse, or one that fails to render sample pages. Autoescaping is on for all.
    pub fn new(dir: Option<&Path>) -> Result<Templates, String> {
        let Some(dir) = dir else {
            return Ok(Templates {
                env: builtin(),
                fallback: None,
            });
        };
        let mut env = builtin();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("template directory {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("template directory {}: {e}", dir.display()))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".html") || !path.is_file() {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|e| format!("template {}: {e}", path.display()))?;
            env.add_template_owned(name.to_owned(), source)
                .map_err(|e| format!("template {}: {e}", path.display()))?;
        }
        let templates = Templates {
            env,
            fallback: Some(builtin()),
        };
        // Render samples now, so an override that parses but fails at render time (unknown
        // filter, broken extends, …) stops the start instead of every request.
        templates
            .try_samples()
            .map_err(|e| format!("templates in {}: {e}", dir.display()))?;
        Ok(templates)
    }

    fn try_samples(&self) -> Result<(), String> {
        let page = Page {
            title: Some("Sample".into()),
            text: Some("One.\n\nTwo".into()),
            fields: [
                FieldType::Text,
                FieldType::Email,
                FieldType::Password,
                FieldType::Number,
                FieldType::Textarea,
                FieldType::Checkbox,
                FieldType::Radio,
                FieldType::Select,
            ]
            .into_iter()
            .map(|kind| Field {
                name: format!("f_{}", type_name(kind)),
                kind,
                label: type_name(kind).into(),
                required: false,
                minlength: Some(1),
                options: if matches!(kind, FieldType::Radio | FieldType::Select) {
                    vec![Choice {
                        value: "a".into(),
                        label: "A".into(),
                    }]
                } else {
                    Vec::new()
                },
                same_as: None,
            })
            .collect(),
            ..Page::default()
        };
        let mut values = Map::new();
        values.insert("f_text".into(), Value::String("x".into()));
        let render = |name: &str, ctx: minijinja::Value| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .map(drop)
                .map_err(|e| format!("{name}: {e}"))
        };
        render(
            "landing.html",
            Self::landing_context(&page, "/t/x", Some("Error"), &values),
        )?;
        render("success.html", Self::success_context(&page))?;
        for status in ["invalid", "expired", "used", "revoked", "unbound", "other"] {
            render("status.html", Self::status_context(status, Some("/code")))?;
        }
        render("error.html", Self::error_context("Title", "Message"))
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        let result = self.env.get_template(name).and_then(|t| t.render(&ctx));
        match result {
            Ok(html) => html,
            Err(e) => {
                eprintln!("linktoken-gateway: template {name} failed: {e}");
                self.fallback
                    .as_ref()
                    .and_then(|env| env.get_template(name).and_then(|t| t.render(&ctx)).ok())
                    .unwrap_or_else(|| LAST_RESORT.to_owned())
            }
        }
    }

    fn landing_context(
        page: &Page,
        action: &str,
        error: Option<&str>,
        values: &Map<String, Value>,
    ) -> minijinja::Value {
        let fields: Vec<FieldView> = page
            .form_fields()
            .into_iter()
            .map(|f| {
                let previous = values.get(&f.name).and_then(Value::as_str).unwrap_or("");
                let value = if f.kind == FieldType::Password {
                    String::new()
                } else {
                    previous.to_owned()
                };
                let id = format!("f-{}", f.name);
                let options = f
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, c)| OptionView {
                        value: c.value.clone(),
                        label: c.label.clone(),
                        id: format!("{id}-{i}"),
                        selected: !previous.is_empty() && c.value == previous,
                    })
                    .collect();
                FieldView {
                    checked: f.kind == FieldType::Checkbox && !previous.is_empty(),
                    kind: type_name(f.kind),
                    id,
                    required: f.required,
                    minlength: f.minlength.filter(|&m| m > 0),
                    value,
                    options,
                    name: f.name,
                    label: f.label,
                }
            })
            .collect();
        let text = page.text.as_deref().unwrap_or("");
        context! {
            title => page.title.as_deref().unwrap_or("Confirm"),
            text => text,
            paragraphs => paragraphs(text),
            button => page.button.as_deref().unwrap_or("Continue"),
            action => action,
            error => error,
            fields => fields,
        }
    }

    fn success_context(page: &Page) -> minijinja::Value {
        let text = page
            .success_text
            .as_deref()
            .unwrap_or("Thank you, that worked.");
        context! {
            title => page.success_title.as_deref().unwrap_or("Done"),
            text => text,
            paragraphs => paragraphs(text),
        }
    }

    fn status_context(status: &str, code_url: Option<&str>) -> minijinja::Value {
        let (title, paragraphs) = status_texts(status);
        context! {
            status => status,
            title => title,
            paragraphs => paragraphs,
            code_url => code_url,
        }
    }

    fn error_context(title: &str, message: &str) -> minijinja::Value {
        let paragraphs: Vec<String> = paragraphs(message)
            .into_iter()
            .map(|lines| lines.join(" "))
            .collect();
        context! {
            title => title,
            message => message,
            paragraphs => paragraphs,
        }
    }

    /// The landing page: a `<form method="post" action="{action}">` with the page's fields
    /// (`page.form_fields()`), one submit button (`page.button` or "Continue"), the title
    /// (`page.title` or "Confirm") and text. `error` is shown above the form (`role="alert"`).
    /// `values` refill the fields (never password fields). Required fields get `required`,
    /// `minlength` becomes `minlength` (not on number inputs, where HTML does not allow it).
    /// Radios and selects render their options (a select starts at an empty "Choose…" option,
    /// no radio is pre-checked); checkboxes submit the value "yes".
    pub fn landing(
        &self,
        page: &Page,
        action: &str,
        error: Option<&str>,
        values: &Map<String, Value>,
    ) -> String {
        self.render(
            "landing.html",
            Self::landing_context(page, action, error, values),
        )
    }

    /// After a successful redemption: `page.success_title`/`page.success_text`, or "Done" /
    /// "Thank you, that worked.".
    pub fn success(&self, page: &Page) -> String {
        self.render("success.html", Self::success_context(page))
    }

    /// For a link that cannot be used: `status` is "invalid", "expired", "used", "revoked" (or
    /// "unbound"); anything else gets a generic "This link cannot be used" page. The text says
    /// what happened and what to do.
    pub fn status(&self, status: &str) -> String {
        self.status_page(status, None)
    }

    /// [`Templates::status`] with a link to a page where the code can be entered (shown by the
    /// built-in template whenever given; meant for "unbound").
    pub fn status_page(&self, status: &str, code_url: Option<&str>) -> String {
        self.render("status.html", Self::status_context(status, code_url))
    }

    /// Generic error page for HTTP errors, e.g. 413 "Too much data", 429 "Too many attempts".
    pub fn error(&self, title: &str, message: &str) -> String {
        self.render("error.html", Self::error_context(title, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn page(v: Value) -> Page {
        Page::from_json(&v).unwrap()
    }

    fn values(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn t() -> Templates {
        Templates::new(None).unwrap()
    }

    fn all_types_page() -> Page {
        page(json!({
            "title": "Tell us", "text": "First line\nsecond line\n\nNext paragraph", "button": "Send",
            "fields": [
                {"name": "name", "type": "text", "label": "Name", "required": true, "minlength": 2},
                {"name": "email", "type": "email", "label": "Email"},
                {"name": "password", "type": "password", "label": "Password", "required": true, "minlength": 12},
                {"name": "age", "type": "number", "label": "Age", "minlength": 1},
                {"name": "note", "type": "textarea", "label": "Note", "minlength": 5},
                {"name": "news", "type": "checkbox", "label": "Send news"},
                {"name": "q1", "type": "radio", "label": "How often?", "required": true,
                 "options": [{"value": "0", "label": "Never"}, {"value": "3", "label": "Daily"}]},
                {"name": "lang", "type": "select", "label": "Language",
                 "options": [{"value": "en", "label": "English"}, {"value": "de", "label": "Deutsch"}]}
            ]
        }))
    }

    /// The HTML tag (from `<` to `>`) that contains `needle`.
    fn tag_with<'a>(html: &'a str, needle: &str) -> &'a str {
        let at = html
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in\n{html}"));
        let start = html[..at].rfind('<').unwrap();
        let end = at + html[at..].find('>').unwrap() + 1;
        &html[start..end]
    }

    /// Every value of `attr="…"` in the document.
    fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let pat = format!(" {attr}=\"");
        html.match_indices(&pat)
            .map(|(i, _)| {
                let rest = &html[i + pat.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    /// What every page must (not) contain: HTML5 skeleton, CSP-friendly, no scripts.
    fn assert_plain_page(html: &str) {
        assert!(html.starts_with("<!doctype html>\n"), "{html}");
        for needle in [
            "<html lang=\"en\">",
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<meta name=\"robots\" content=\"noindex\">",
            "<link rel=\"stylesheet\" href=\"/static/style.css\">",
            "<main>",
            "</main>",
            "<h1>",
            "<title>",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "<style",
            " style=",
            "http-equiv",
            "http:",
            "https:",
            "<iframe",
            "<img",
            "javascript:",
        ] {
            assert!(!lower.contains(bad), "found {bad:?} in\n{html}");
        }
        // No inline event handlers (onclick=, onload=, …) in any tag. (Text is escaped, so
        // every `<` in the output starts a real tag.)
        for (i, _) in lower.match_indices('<') {
            let tag = &lower[i..i + lower[i..].find('>').unwrap()];
            assert!(
                !tag.split_whitespace()
                    .any(|w| w.starts_with("on") && w.contains('=')),
                "event handler in {tag}"
            );
        }
        // Labels and controls belong together, and ids are unique.
        let ids = attr_values(html, "id");
        let fors = attr_values(html, "for");
        for f in &fors {
            assert_eq!(
                ids.iter().filter(|i| *i == f).count(),
                1,
                "id {f:?} in\n{html}"
            );
        }
        for control in ["<input", "<select", "<textarea"] {
            for (i, _) in html.match_indices(control) {
                let tag = &html[i..i + html[i..].find('>').unwrap()];
                let id = attr_values(tag, "id");
                assert_eq!(id.len(), 1, "control without id: {tag}");
                assert!(fors.contains(&id[0]), "control without label: {tag}");
            }
        }
    }

    #[test]
    fn landing_renders_every_field_type() {
        let html = t().landing(&all_types_page(), "/t/ltk_abc", None, &Map::new());
        assert_plain_page(&html);
        assert!(html.contains("<title>Tell us</title>"));
        assert!(html.contains("<h1>Tell us</h1>"));
        assert!(html.contains("<p>First line<br>second line</p>\n<p>Next paragraph</p>"));
        assert_eq!(html.matches("<form ").count(), 1);
        let form = tag_with(&html, "<form ");
        assert!(form.contains("method=\"post\""), "{form}");
        assert!(form.contains("action=\"&#x2f;t&#x2f;ltk_abc\""), "{form}");
        assert_eq!(html.matches("<button").count(), 1);
        assert!(html.contains("<button type=\"submit\">Send</button>"));

        let name = tag_with(&html, "name=\"name\"");
        assert!(
            name.starts_with("<input type=\"text\" id=\"f-name\""),
            "{name}"
        );
        assert!(html.contains("<label for=\"f-name\">Name</label>"));
        assert!(tag_with(&html, "name=\"email\"").starts_with("<input type=\"email\""));
        let password = tag_with(&html, "name=\"password\"");
        assert!(
            password.starts_with("<input type=\"password\""),
            "{password}"
        );
        assert!(
            password.contains("autocomplete=\"new-password\""),
            "{password}"
        );
        assert!(tag_with(&html, "name=\"age\"").starts_with("<input type=\"number\""));
        assert!(tag_with(&html, "name=\"note\"").starts_with("<textarea "));
        assert!(html.contains("</textarea>"));
        let news = tag_with(&html, "name=\"news\"");
        assert!(news.starts_with("<input type=\"checkbox\""), "{news}");
        assert!(news.contains("value=\"yes\""), "{news}");
        assert!(html.contains("<label for=\"f-news\">Send news</label>"));

        // Radio: a fieldset whose legend is the label, one labelled input per option.
        assert!(html.contains("<legend>How often?</legend>"));
        assert_eq!(html.matches("type=\"radio\"").count(), 2);
        assert!(tag_with(&html, "id=\"f-q1-0\"").contains("value=\"0\""));
        assert!(html.contains("<label for=\"f-q1-0\">Never</label>"));
        assert!(html.contains("<label for=\"f-q1-1\">Daily</label>"));
        // Select: an empty first choice, so nothing is chosen by default.
        assert!(tag_with(&html, "name=\"lang\"").starts_with("<select id=\"f-lang\""));
        assert!(html.contains("<option value=\"\">Choose…</option>"));
        assert!(html.contains("<option value=\"en\">English</option>"));
        assert!(html.contains("<option value=\"de\">Deutsch</option>"));
        // Nothing is pre-filled or pre-selected on a fresh page.
        assert!(!html.contains(" checked"));
        assert!(!html.contains(" selected"));
        assert!(!html.contains(" value=\"\" "));
        assert!(!html.contains("role=\"alert\""));
        // The page has required fields: no confirmation checkbox.
        assert!(!html.contains("name=\"confirm\""));
    }

    #[test]
    fn required_and_minlength_attributes() {
        let html = t().landing(&all_types_page(), "/t/x", None, &Map::new());
        let name = tag_with(&html, "name=\"name\"");
        assert!(name.contains(" required"), "{name}");
        assert!(name.contains(" minlength=\"2\""), "{name}");
        let password = tag_with(&html, "name=\"password\"");
        assert!(password.contains(" required") && password.contains(" minlength=\"12\""));
        let email = tag_with(&html, "name=\"email\"");
        assert!(
            !email.contains("required") && !email.contains("minlength"),
            "{email}"
        );
        assert!(html.contains(
            "<label for=\"f-email\">Email <span class=\"optional\">(optional)</span></label>"
        ));
        assert!(tag_with(&html, "name=\"note\"").contains(" minlength=\"5\""));
        // minlength is not an attribute of number inputs; the server still checks it.
        assert!(!tag_with(&html, "name=\"age\"").contains("minlength"));
        assert!(tag_with(&html, "id=\"f-q1-0\"").contains(" required"));
        assert!(tag_with(&html, "id=\"f-q1-1\"").contains(" required"));
        assert!(!tag_with(&html, "name=\"lang\"").contains("required"));
        assert!(!tag_with(&html, "name=\"news\"").contains("required"));
    }

    #[test]
    fn fieldless_page_gets_the_confirmation_checkbox() {
        let html = t().landing(&Page::default(), "/t/x", None, &Map::new());
        assert_plain_page(&html);
        assert!(html.contains("<title>Confirm</title>"));
        assert!(html.contains("<h1>Confirm</h1>"));
        assert!(html.contains("<button type=\"submit\">Continue</button>"));
        let confirm = tag_with(&html, "name=\"confirm\"");
        assert_eq!(
            confirm,
            "<input type=\"checkbox\" id=\"f-confirm\" name=\"confirm\" value=\"yes\" required>"
        );
        assert!(html.contains("<label for=\"f-confirm\">Yes, I want to continue</label>"));

        let custom = page(
            json!({"confirm_label": "Unsubscribe me", "fields": [{"name": "why", "label": "Why?"}]}),
        );
        let html = t().landing(&custom, "/t/x", None, &Map::new());
        assert!(html.contains("<label for=\"f-confirm\">Unsubscribe me</label>"));
        assert!(tag_with(&html, "name=\"confirm\"").contains(" required"));
        assert!(tag_with(&html, "name=\"why\"").starts_with("<input type=\"text\""));
    }

    #[test]
    fn values_are_refilled_but_never_passwords() {
        let page = all_types_page();
        let previous = values(json!({
            "name": "Zoë", "email": "z@example.org", "password": "hunter2hunter2",
            "age": "42", "note": "a\nnote", "news": "yes", "q1": "3", "lang": "de",
            "unknown": "ignored"
        }));
        let html = t().landing(&page, "/t/x", Some("“Password” does not match."), &previous);
        assert_plain_page(&html);
        assert!(tag_with(&html, "name=\"name\"").contains(" value=\"Zoë\""));
        assert!(tag_with(&html, "name=\"email\"").contains(" value=\"z@example.org\""));
        assert!(tag_with(&html, "name=\"age\"").contains(" value=\"42\""));
        assert!(html.contains(">a\nnote</textarea>"));
        assert!(tag_with(&html, "name=\"news\"").contains(" checked"));
        assert!(tag_with(&html, "id=\"f-q1-1\"").contains(" checked"));
        assert!(!tag_with(&html, "id=\"f-q1-0\"").contains(" checked"));
        assert!(html.contains("<option value=\"de\" selected>Deutsch</option>"));
        assert!(html.contains("<option value=\"en\">English</option>"));
        let password = tag_with(&html, "name=\"password\"");
        assert!(!password.contains("value"), "{password}");
        assert!(!html.contains("hunter2"));
        assert!(!html.contains("ignored"));

        // A page with a second password field (repeat): neither is refilled.
        let reset = page_with_passwords();
        let html = t().landing(
            &reset,
            "/t/x",
            Some("too short"),
            &values(json!({"password": "s3cret-one", "password2": "s3cret-two"})),
        );
        assert!(!html.contains("s3cret"));
    }

    fn page_with_passwords() -> Page {
        page(json!({"fields": [
            {"name": "password", "type": "password", "label": "New password", "required": true, "minlength": 12},
            {"name": "password2", "type": "password", "label": "Repeat", "required": true, "same_as": "password"}
        ]}))
    }

    #[test]
    fn error_is_shown_above_the_form() {
        let html = t().landing(
            &page_with_passwords(),
            "/t/x",
            Some("“New password” must be at least 12 characters long."),
            &Map::new(),
        );
        assert_plain_page(&html);
        let alert = "<p class=\"error\" role=\"alert\" id=\"form-error\">“New password” must be at least 12 characters long.</p>";
        let at = html.find(alert).expect(&html);
        assert!(at < html.find("<form").unwrap());
        assert!(tag_with(&html, "<form ").contains("aria-describedby=\"form-error\""));
    }

    #[test]
    fn everything_dynamic_is_escaped() {
        let evil = page(json!({
            "title": "<script>alert(1)</script>",
            "text": "<img src=x onerror=alert(1)> & more",
            "button": "<b>Go</b>",
            "fields": [
                {"name": "a", "label": "Say \"hi\" <now>", "required": true},
                {"name": "b", "type": "select", "label": "B",
                 "options": [{"value": "\"><script>", "label": "<script>x</script>"}]}
            ],
            "success_title": "<script>t</script>",
            "success_text": "<script>s</script>"
        }));
        let html = t().landing(
            &evil,
            "/t/\"><script>",
            Some("<script>alert(2)</script>"),
            &values(json!({"a": "\"><script>alert(3)</script>"})),
        );
        assert_plain_page(&html);
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</title>"));
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</h1>"));
        assert!(html.contains("<label for=\"f-a\">Say &quot;hi&quot; &lt;now&gt;</label>"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; more"));
        assert!(html.contains("<button type=\"submit\">&lt;b&gt;Go&lt;&#x2f;b&gt;</button>"));
        assert!(tag_with(&html, "name=\"a\"").contains("value=\"&quot;&gt;&lt;script&gt;"));

        let html = t().success(&evil);
        assert_plain_page(&html);
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        assert!(html.contains("<h1>&lt;script&gt;t&lt;&#x2f;script&gt;</h1>"));

        let html = t().error("<script>e</script>", "<script>m</script>");
        assert_plain_page(&html);
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");

        let html = t().status("<script>x</script>");
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        let html = t().status_page("unbound", Some("javascript\"><script>"));
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    }

    #[test]
    fn success_page() {
        let html = t().success(&Page::default());
        assert_plain_page(&html);
        assert!(html.contains("<title>Done</title>"));
        assert!(html.contains("<h1>Done</h1>"));
        assert!(html.contains("<p>Thank you, that worked.</p>"));
        assert!(!html.contains("<form"));
        let custom = page(
            json!({"success_title": "Password changed", "success_text": "You can now sign in.\n\nWelcome back."}),
        );
        let html = t().success(&custom);
        assert!(html.contains("<h1>Password changed</h1>"));
        assert!(html.contains("<p>You can now sign in.</p>\n<p>Welcome back.</p>"));
    }

    #[test]
    fn status_pages_say_what_happened_and_what_to_do() {
        let t = t();
        let cases: [(&str, &str, &[&str]); 4] = [
            (
                "invalid",
                "Link not found",
                &["copied the whole link", "request a new link"],
            ),
            (
                "expired",
                "This link has expired",
                &["request a new link from the site or app that sent it"],
            ),
            (
                "used",
                "This link was already used",
                &[
                    "This was already done",
                    "nothing more to do",
                    "If it wasn&#x27;t you",
                    "contact the support",
                    "request a new link",
                ],
            ),
            (
                "revoked",
                "This link is no longer valid",
                &[
                    "A newer link was sent",
                    "cancelled",
                    "newest email",
                    "request a new one",
                ],
            ),
        ];
        for (status, title, texts) in cases {
            let html = t.status(status);
            assert_plain_page(&html);
            assert!(html.contains(&format!("<title>{title}</title>")), "{html}");
            assert!(html.contains(&format!("<h1>{title}</h1>")), "{html}");
            for text in texts {
                assert!(html.contains(text), "{status}: {text:?} not in\n{html}");
            }
            assert!(!html.contains("<form") && !html.contains("<a "), "{html}");
        }
        let html = t.status("unbound");
        assert_plain_page(&html);
        assert!(html.contains("<h1>Open the link in the browser where you asked for it</h1>"));
        assert!(html.contains("enter the code"));
        assert!(!html.contains("<a "));
        let html = t.status_page("unbound", Some("/code?for=x&y=1"));
        assert!(html
            .contains("<a class=\"button\" href=\"&#x2f;code?for=x&amp;y=1\">Enter the code</a>"));
        let html = t.status("something-else");
        assert_plain_page(&html);
        assert!(html.contains("<h1>This link cannot be used</h1>"));
    }

    #[test]
    fn error_pages() {
        let t = t();
        for (title, message) in [
            ("Too much data", "The form sent more data than allowed."),
            (
                "Too many attempts",
                "Too many attempts – try again in a minute.",
            ),
            (
                "Temporarily unavailable",
                "Please try again in a few minutes.",
            ),
        ] {
            let html = t.error(title, message);
            assert_plain_page(&html);
            assert!(html.contains(&format!("<title>{title}</title>")));
            assert!(
                html.contains(&format!("<h1>{title}</h1>\n<p>{message}</p>")),
                "{html}"
            );
        }
    }

    #[test]
    fn stylesheet_is_self_contained() {
        assert!(STYLE_CSS.contains(":focus-visible"));
        assert!(STYLE_CSS.contains("system-ui"));
        assert!(
            STYLE_CSS.contains("min-height: 2.75rem"),
            "large touch targets"
        );
        assert!(!STYLE_CSS.contains("@import") && !STYLE_CSS.contains("url("));
    }

    /// A fresh, empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "linktoken-gateway-html-{tag}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn override_directory_replaces_templates() {
        let dir = TempDir::new("override");
        dir.write(
            "landing.html",
            "{% extends \"base.html\" %}{% block content %}<h1>Custom {{ title }}</h1>\
             {% include \"partial.html\" %}<form method=\"post\" action=\"{{ action }}\">\
             {% for f in fields %}<label for=\"{{ f.id }}\">{{ f.label }}</label>\
             <input id=\"{{ f.id }}\" name=\"{{ f.name }}\" value=\"{{ f.value }}\">{% endfor %}\
             <button>{{ button }}</button></form>{% endblock %}",
        );
        dir.write("partial.html", "<p>Our own words.</p>");
        dir.write("notes.txt", "{% not a template");
        let t = Templates::new(Some(&dir.0)).unwrap();
        let p = page(
            json!({"title": "<Reset>", "fields": [{"name": "password", "type": "password", "label": "P", "required": true}]}),
        );
        let html = t.landing(&p, "/t/x", None, &values(json!({"password": "secret"})));
        assert_plain_page(&html);
        assert!(html.contains("<h1>Custom &lt;Reset&gt;</h1>"), "{html}");
        assert!(html.contains("<p>Our own words.</p>"));
        assert!(!html.contains("secret"), "the value is empty for passwords");
        // Templates not in the directory stay built-in.
        assert!(t.success(&Page::default()).contains("<h1>Done</h1>"));
        assert!(t.status("expired").contains("This link has expired"));

        // Overriding base.html changes every page.
        let dir2 = TempDir::new("base");
        dir2.write(
            "base.html",
            "<!doctype html>\n<html lang=\"de\"><head><title>{{ title }}</title></head>\
             <body><main>{% block content %}{% endblock %}</main></body></html>",
        );
        let t = Templates::new(Some(&dir2.0)).unwrap();
        assert!(t.error("Fehler", "<x>").contains("<html lang=\"de\">"));
        assert!(t.error("Fehler", "<x>").contains("&lt;x&gt;"));
    }

    #[test]
    fn broken_or_missing_override_directory_is_an_error() {
        let missing = std::env::temp_dir().join("linktoken-gateway-html-no-such-dir");
        let err = Templates::new(Some(&missing)).err().unwrap();
        assert!(err.contains("linktoken-gateway-html-no-such-dir"), "{err}");

        for (tag, name, text) in [
            (
                "syntax",
                "landing.html",
                "{% block content %}<h1>{{ title }</h1>",
            ),
            ("unclosed", "status.html", "{% if title %}no endif"),
            ("badparent", "error.html", "{% extends \"nope.html\" %}"),
            (
                "badinclude",
                "success.html",
                "{% include \"missing.html\" %}",
            ),
            ("badfilter", "landing.html", "{{ title|no_such_filter }}"),
            ("badpartial", "partial.html", "{{ oops"),
        ] {
            let dir = TempDir::new(tag);
            dir.write(name, text);
            let err = Templates::new(Some(&dir.0)).err();
            assert!(err.is_some(), "{tag}: accepted");
        }
        let dir = TempDir::new("notutf8");
        std::fs::write(dir.0.join("landing.html"), b"\xff\xfe").unwrap();
        assert!(Templates::new(Some(&dir.0)).is_err());
    }

    #[test]
    fn override_failing_at_render_time_falls_back_to_the_builtin() {
        let dir = TempDir::new("runtime");
        dir.write(
            "landing.html",
            "{% if error == \"boom\" %}{% include \"missing.html\" %}{% endif %}<p>custom {{ error }}</p>",
        );
        let t = Templates::new(Some(&dir.0)).unwrap();
        assert!(t
            .landing(&Page::default(), "/t/x", Some("fine"), &Map::new())
            .contains("<p>custom fine</p>"));
        let html = t.landing(&Page::default(), "/t/x", Some("boom"), &Map::new());
        assert_plain_page(&html);
        assert!(
            html.contains("role=\"alert\" id=\"form-error\">boom</p>"),
            "{html}"
        );
    }
}
