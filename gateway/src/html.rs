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
        let mut names = Vec::new();
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
            names.push(name.to_owned());
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
            self.landing_context(&page, "/t/x", Some("Error"), &values),
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
        &self,
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
            self.landing_context(page, action, error, values),
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
    fn status_page(&self, status: &str, code_url: Option<&str>) -> String {
        self.render("status.html", Self::status_context(status, code_url))
    }

    /// Generic error page for HTTP errors, e.g. 413 "Too much data", 429 "Too many attempts".
    pub fn error(&self, title: &str, message: &str) -> String {
        self.render("error.html", Self::error_context(title, message))
    }
}
