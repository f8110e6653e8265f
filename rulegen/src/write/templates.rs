//! The tera templates of the generated YAML files (compiled into the binary), with the filters
//! they quote with: `q` a YAML double-quoted scalar, `sq` a single-quoted one.

use std::collections::HashMap;

use tera::{Context, Tera};

const RULES: &str = include_str!("../../../templates/prometheus/rules.yml.tera");
const TESTS: &str = include_str!("../../../templates/prometheus/test.yml.tera");
const ALERTMANAGER: &str = include_str!("../../../templates/alertmanager/alertmanager.yml.tera");

/// A template that failed to compile or to render, with tera's chain of causes.
#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

impl From<tera::Error> for TemplateError {
    fn from(e: tera::Error) -> TemplateError {
        use std::error::Error;
        let mut msg = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        TemplateError(msg)
    }
}

pub struct Templates(Tera);

/// The templates, by name.
pub const RULES_TEMPLATE: &str = "rules.yml";
pub const TESTS_TEMPLATE: &str = "test.yml";
pub const ALERTMANAGER_TEMPLATE: &str = "alertmanager.yml";

impl Templates {
    pub fn new() -> Result<Templates, TemplateError> {
        let mut t = Tera::default();
        t.add_raw_template(RULES_TEMPLATE, RULES)?;
        t.add_raw_template(TESTS_TEMPLATE, TESTS)?;
        t.add_raw_template(ALERTMANAGER_TEMPLATE, ALERTMANAGER)?;
        // `q`: a YAML double-quoted scalar (JSON string syntax is valid YAML).
        t.register_filter("q", |v: &tera::Value, _: &HashMap<String, tera::Value>| {
            Ok(tera::Value::String(
                serde_json::to_string(&as_string(v)).expect("string"),
            ))
        });
        // `sq`: a YAML single-quoted scalar (Alertmanager matchers read better without escapes).
        t.register_filter("sq", |v: &tera::Value, _: &HashMap<String, tera::Value>| {
            Ok(tera::Value::String(format!(
                "'{}'",
                as_string(v).replace('\'', "''")
            )))
        });
        Ok(Templates(t))
    }

    /// The template `name` rendered with `ctx`, ending in one newline.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, TemplateError> {
        Ok(self.0.render(name, ctx)? + "\n")
    }
}

fn as_string(v: &tera::Value) -> String {
    match v {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
