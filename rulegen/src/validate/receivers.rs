//! Receivers: their types (checked with the severities, before the rules), then each one's
//! fields for Alertmanager, with secrets only from files (checked with the routes, after).

use std::collections::BTreeMap;

use crate::model::ReceiverM;
use crate::spec::v1::Receiver;
use crate::spec::Spec;

use super::ctx::Ctx;

/// Known types (pagerduty, slack, webhook); a slack receiver names its channel.
pub fn types(spec: &Spec, cx: &mut Ctx) {
    for (name, r) in &spec.receivers {
        if !["pagerduty", "slack", "webhook"].contains(&r.kind.as_str()) {
            cx.err(
                &format!("receivers.{name}.type"),
                format!(
                    "unknown receiver type `{}` (pagerduty, slack or webhook)",
                    r.kind
                ),
            );
        }
        if r.kind == "slack" && r.channel.is_none() {
            cx.err(
                &format!("receivers.{name}"),
                "a slack receiver needs a `channel`",
            );
        }
    }
}

/// Receivers by scope label (`region` → the regional channel): known scopes and receivers.
pub fn scope_receivers(spec: &Spec, cx: &mut Ctx) {
    for (scope, rs) in &spec.scope_receivers {
        if !["node", "region", "fleet"].contains(&scope.as_str()) {
            cx.err(
                &format!("scope_receivers.{scope}"),
                format!("unknown scope `{scope}` (node, region or fleet)"),
            );
        }
        for (i, r) in rs.iter().enumerate() {
            if !spec.receivers.contains_key(r) {
                cx.err(
                    &format!("scope_receivers.{scope}[{i}]"),
                    format!("unknown receiver `{r}`"),
                );
            }
        }
    }
}

fn check_url(cx: &mut Ctx, url: &str, field: &str) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None => cx.err(field, format!("`{url}` is not an http:// or https:// URL")),
        Some(r) => {
            let authority = r.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.contains('@') {
                cx.err(
                    field,
                    "credentials in a URL are an inline secret: put them in the file named by `secret_file`",
                );
            } else if authority.is_empty() || url.chars().any(char::is_whitespace) {
                cx.err(field, format!("`{url}` is not a valid URL"));
            }
        }
    }
}

/// Every receiver as Alertmanager gets it. A secret given inline is refused, with the field that
/// holds it.
pub fn receivers(spec: &Spec, cx: &mut Ctx) -> BTreeMap<String, ReceiverM> {
    let mut out = BTreeMap::new();
    for (name, r) in &spec.receivers {
        let p = format!("receivers.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            cx.err(
                &p,
                format!("`{name}` is not a receiver name (letters, digits, - and _)"),
            );
        }
        for (field, v, what) in [
            ("api_url", &r.api_url, "Slack webhook URL"),
            ("routing_key", &r.routing_key, "PagerDuty routing key"),
            ("service_key", &r.service_key, "PagerDuty service key"),
            ("token", &r.token, "token"),
            ("password", &r.password, "password"),
        ] {
            if v.is_some() {
                cx.err(
                    &format!("{p}.{field}"),
                    format!("secrets only from files: put the {what} in a file and name it in `secret_file`"),
                );
            }
        }
        let inline = [
            &r.api_url,
            &r.routing_key,
            &r.service_key,
            &r.token,
            &r.password,
        ]
        .iter()
        .any(|v| v.is_some());
        // With an inline secret, that is the error to fix (not the missing file).
        let secret = if inline {
            Some("")
        } else {
            r.secret_file.as_deref()
        };
        if let Some(f) = r.secret_file.as_deref() {
            if f.trim().is_empty() || f.chars().any(char::is_whitespace) {
                cx.err(&format!("{p}.secret_file"), "not a file path");
            }
        }
        type_fields(cx, r, &p, secret);
        out.insert(
            name.clone(),
            ReceiverM {
                name: name.clone(),
                kind: r.kind.clone(),
                channel: r.channel.clone(),
                secret_file: r.secret_file.clone(),
                url: r.url.clone(),
                send_resolved: r.send_resolved.unwrap_or(true),
            },
        );
    }
    out
}

/// What each type needs: slack a secret file (its webhook URL) and a channel, pagerduty a
/// secret file (its routing key), webhook a URL. `secret` is `Some` when the secret is given.
fn type_fields(cx: &mut Ctx, r: &Receiver, p: &str, secret: Option<&str>) {
    match r.kind.as_str() {
        "slack" => {
            if secret.is_none() {
                cx.err(
                    p,
                    "a slack receiver needs `secret_file`: the file holding its webhook URL",
                );
            }
            if r.url.is_some() {
                cx.err(
                    &format!("{p}.url"),
                    "a Slack webhook URL is a secret: put it in the file named by `secret_file`",
                );
            }
            if let Some(c) = &r.channel {
                if !(c.starts_with('#') || c.starts_with('@')) || c.len() < 2 {
                    cx.err(
                        &format!("{p}.channel"),
                        format!("`{c}` is not a channel (#name)"),
                    );
                }
            }
        }
        "pagerduty" => {
            if secret.is_none() {
                cx.err(
                    p,
                    "a pagerduty receiver needs `secret_file`: the file holding its routing key",
                );
            }
            if let Some(u) = &r.url {
                check_url(cx, u, &format!("{p}.url"));
            }
            if r.channel.is_some() {
                cx.err(
                    &format!("{p}.channel"),
                    "only slack receivers have a channel",
                );
            }
        }
        "webhook" => match &r.url {
            None => cx.err(p, "a webhook receiver needs `url`"),
            Some(u) => check_url(cx, u, &format!("{p}.url")),
        },
        _ => {} // reported by `types`
    }
}
