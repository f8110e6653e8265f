//! One Grafana panel as JSON: its queries, field config (unit, min/max, the threshold steps of
//! the alert lines it draws, value mappings of a state query), options per panel type, and a
//! table's transformations.

use serde_json::{json, Value};

use crate::model::{Line, Op, PanelM};

/// The dashboard's datasource variable.
pub fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Grafana threshold steps from lines: each region between lines takes the colour of the most
/// urgent alert that holds on it (green where none does); every line is a step.
pub fn steps(lines: &[Line]) -> Vec<(Option<f64>, String)> {
    let mut bps: Vec<f64> = lines.iter().map(|l| l.value).collect();
    // `== t` holds on a point: colour [t, t + step) and return to normal after it.
    for l in lines.iter().filter(|l| l.op == Op::Eq) {
        let d = if l.value.fract() == 0.0 {
            1.0
        } else {
            l.value.abs() * 0.01
        };
        bps.push(l.value + d);
    }
    bps.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    bps.dedup();
    let rank = |lv: &str| match lv {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    };
    let color_of = |bad: &dyn Fn(&Line) -> bool| -> String {
        lines
            .iter()
            .filter(|l| bad(l))
            .max_by_key(|l| rank(&l.level))
            .map(|l| level_color(&l.level).to_string())
            .unwrap_or_else(|| "green".into())
    };
    let mut out = Vec::new();
    let Some(first) = bps.first().copied() else {
        return vec![(None, "green".into())];
    };
    // Below the lowest line.
    out.push((
        None,
        color_of(&|l: &Line| matches!(l.op, Op::Lt | Op::Le) && l.value >= first),
    ));
    for (i, b) in bps.iter().enumerate() {
        let next = bps.get(i + 1).copied();
        let c = color_of(&|l: &Line| match l.op {
            Op::Gt | Op::Ge => l.value <= *b,
            Op::Lt | Op::Le => next.is_some_and(|n| l.value >= n),
            Op::Eq => l.value == *b,
            Op::Ne => l.value != *b,
        });
        out.push((Some(*b), c));
    }
    out
}

fn level_color(level: &str) -> &'static str {
    match level {
        "critical" => "red",
        "warning" => "orange",
        _ => "blue",
    }
}

/// The panel with Grafana id `id` at grid position (`x`, `y`), with its `links`.
pub fn render_panel(p: &PanelM, links: Vec<Value>, id: u32, x: u32, y: u32) -> Value {
    let mut v = json!({
        "id": id,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": ds(),
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "targets": targets(p),
        "fieldConfig": {"defaults": field_defaults(p), "overrides": []},
        "options": options(p),
        "links": links,
    });
    if p.kind == "table" {
        v["transformations"] = transformations(p);
    }
    v
}

/// One target per query; a table's are instant queries in table format.
fn targets(p: &PanelM) -> Vec<Value> {
    let instant = p.kind == "table";
    p.queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut t = json!({
                "refId": ref_id(i),
                "datasource": ds(),
                "expr": q.expr,
                "legendFormat": q.legend,
                "range": !instant,
                "instant": instant,
            });
            if instant {
                t["format"] = json!("table");
            }
            t
        })
        .collect()
}

/// Unit, min/max, the threshold steps of the alert lines, value mappings, and each type's
/// drawing style.
fn field_defaults(p: &PanelM) -> Value {
    let steps: Vec<Value> = steps(&p.lines)
        .into_iter()
        .map(|(v, c)| json!({"color": c, "value": v}))
        .collect();
    let mut defaults = json!({
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": if p.kind == "timeseries" { "palette-classic" } else { "thresholds" }},
    });
    if let Some(u) = &p.unit {
        defaults["unit"] = json!(u);
    }
    if let Some(v) = p.min {
        defaults["min"] = json!(v);
    }
    if let Some(v) = p.max {
        defaults["max"] = json!(v);
    }
    if !p.mappings.is_empty() {
        let mut opts = serde_json::Map::new();
        for (i, (v, text, color)) in p.mappings.iter().enumerate() {
            opts.insert(
                v.to_string(),
                json!({"text": text, "color": color, "index": i}),
            );
        }
        defaults["mappings"] = json!([{"type": "value", "options": opts}]);
        defaults["color"] = json!({"mode": "thresholds"});
    }
    match p.kind.as_str() {
        "timeseries" => {
            defaults["custom"] = json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 0,
                "showPoints": "never",
                "spanNulls": false,
                "thresholdsStyle": {"mode": if p.lines.is_empty() { "off" } else { "line" }},
            });
        }
        "state-timeline" => {
            defaults["custom"] = json!({"fillOpacity": 80, "lineWidth": 0});
        }
        "table" => {
            defaults["custom"] = json!({"align": "auto", "cellOptions": {"type": "auto"}});
        }
        _ => {}
    }
    defaults
}

/// Legend, tooltip and reduction options of each panel type.
fn options(p: &PanelM) -> Value {
    let reduce = json!({"calcs": ["lastNotNull"], "fields": "", "values": false});
    let legend =
        json!({"showLegend": true, "displayMode": "list", "placement": "bottom", "calcs": []});
    match p.kind.as_str() {
        "timeseries" => json!({"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}),
        "stat" => {
            json!({"reduceOptions": reduce, "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto"})
        }
        "gauge" => {
            json!({"reduceOptions": reduce, "showThresholdLabels": false, "showThresholdMarkers": true})
        }
        "bargauge" => {
            json!({"reduceOptions": reduce, "displayMode": "gradient", "orientation": "horizontal", "showUnfilled": true})
        }
        "state-timeline" => {
            json!({"legend": legend, "mergeValues": true, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9, "tooltip": {"mode": "single", "sort": "none"}})
        }
        _ => {
            json!({"showHeader": true, "cellHeight": "sm"})
        }
    }
}

/// A table: the queries merged into one row per series, columns named by their legends.
fn transformations(p: &PanelM) -> Value {
    let mut rename = serde_json::Map::new();
    for (i, q) in p.queries.iter().enumerate() {
        let key = if p.queries.len() == 1 {
            "Value".to_string()
        } else {
            format!("Value #{}", ref_id(i))
        };
        rename.insert(key, json!(q.legend));
    }
    let mut tr = vec![
        json!({"id": "merge", "options": {}}),
        json!({"id": "organize", "options": {"excludeByName": {"Time": true, "__name__": true, "job": true, "instance": true}, "renameByName": rename}}),
    ];
    if let Some(s) = &p.sort_by {
        tr.push(json!({"id": "sortBy", "options": {"fields": {}, "sort": [{"field": s, "desc": true}]}}));
    }
    json!(tr)
}

fn ref_id(i: usize) -> String {
    ((b'A' + (i as u8 % 26)) as char).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(op: Op, value: f64, level: &str) -> Line {
        Line {
            alert: "A".into(),
            op,
            value,
            level: level.into(),
            text: String::new(),
        }
    }

    #[test]
    fn steps_colour_each_region_by_the_most_urgent_alert_that_holds() {
        let s = steps(&[line(Op::Gt, 0.05, "warning"), line(Op::Gt, 0.2, "critical")]);
        assert_eq!(
            s,
            vec![
                (None, "green".into()),
                (Some(0.05), "orange".into()),
                (Some(0.2), "red".into())
            ]
        );
        let s = steps(&[line(Op::Lt, 0.95, "warning")]);
        assert_eq!(
            s,
            vec![(None, "orange".into()), (Some(0.95), "green".into())]
        );
        let s = steps(&[line(Op::Eq, 0.0, "critical")]);
        assert_eq!(
            s,
            vec![
                (None, "green".into()),
                (Some(0.0), "red".into()),
                (Some(1.0), "green".into())
            ]
        );
    }
}
