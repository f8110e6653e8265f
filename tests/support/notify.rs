//! What Alertmanager delivered, read back from the webhook: which receiver, firing or resolved,
//! which alerts, and the rendered text (Slack title and text, the PagerDuty Events v2 payload,
//! the webhook JSON).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::stack::Redirect;
use crate::webhook::Received;

#[derive(Clone, Debug)]
pub struct Notification {
    pub at: Instant,
    /// The receiver of the generated configuration (from the path it was redirected to).
    pub receiver: String,
    /// slack, pagerduty, webhook
    pub kind: String,
    /// firing or resolved
    pub status: String,
    /// Alert names the notification is about.
    pub alertnames: Vec<String>,
    /// Slack: title + text; PagerDuty: summary + details; webhook: the body.
    pub text: String,
    pub request: Received,
}

impl Notification {
    /// Read one request; `known` are the alert names of the rendered rules (Slack titles are
    /// text: the names are found in them).
    pub fn parse(
        r: &Received,
        receivers: &BTreeMap<String, Redirect>,
        known: &[String],
    ) -> Result<Notification, String> {
        let (receiver, red) = receivers
            .iter()
            .find(|(_, red)| red.path == r.path)
            .ok_or_else(|| format!("request to an unknown path {} {}", r.method, r.path))?;
        let j = &r.json;
        let (status, alertnames, text) = match red.kind.as_str() {
            "slack" => {
                let a = &j["attachments"][0];
                let title = a["title"].as_str().unwrap_or("").to_string();
                let status = if title.starts_with("[FIRING") {
                    "firing"
                } else if title.starts_with("[RESOLVED") {
                    "resolved"
                } else {
                    return Err(format!("Slack title without status: {title:?}"));
                };
                let names = title
                    .split_whitespace()
                    .filter(|w| known.iter().any(|k| k == w))
                    .map(String::from)
                    .collect();
                (
                    status.to_string(),
                    names,
                    format!("{title}\n{}", a["text"].as_str().unwrap_or("")),
                )
            }
            "pagerduty" => {
                let status = match j["event_action"].as_str() {
                    Some("trigger") => "firing",
                    Some("resolve") => "resolved",
                    other => return Err(format!("PagerDuty event_action {other:?}")),
                };
                let names = j["payload"]["custom_details"]["alertname"]
                    .as_str()
                    .map(|s| vec![s.to_string()])
                    .unwrap_or_default();
                (status.to_string(), names, j["payload"].to_string())
            }
            "webhook" => {
                let names = j["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["labels"]["alertname"].as_str().map(String::from))
                    .collect();
                (
                    j["status"].as_str().unwrap_or("").to_string(),
                    names,
                    r.body.clone(),
                )
            }
            k => return Err(format!("unknown receiver kind {k}")),
        };
        Ok(Notification {
            at: r.at,
            receiver: receiver.clone(),
            kind: red.kind.clone(),
            status,
            alertnames,
            text,
            request: r.clone(),
        })
    }

    pub fn is(&self, alertname: &str) -> bool {
        self.alertnames.iter().any(|a| a == alertname)
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {:?}: {}",
            self.receiver,
            self.status,
            self.alertnames,
            self.text
                .replace('\n', " | ")
                .chars()
                .take(240)
                .collect::<String>()
        )
    }
}
