//! The outputs besides the plain files: Kubernetes manifests (prometheus-operator's
//! PrometheusRule and PodMonitor, the Alertmanager config as a Secret, dashboards as ConfigMaps
//! of the Grafana chart's sidecar) and a monitoring mixin.

use chainwatch_duration::Duration;

use super::measure::LabelMap;

#[derive(Debug, Clone, Default)]
pub struct OutputsM {
    pub kubernetes: Option<KubernetesM>,
    pub mixin: bool,
}

#[derive(Debug, Clone)]
pub struct KubernetesM {
    /// Of the rules, the Secret and the dashboards.
    pub namespace: String,
    /// On every generated object.
    pub labels: LabelMap,
    pub pod_monitor: PodMonitorM,
    /// The label the Grafana chart's sidecar loads dashboards by, and its value.
    pub dashboard_label: (String, String),
    /// The annotation naming a dashboard's folder (the chart's `folderAnnotation`).
    pub folder_annotation: String,
}

#[derive(Debug, Clone)]
pub struct PodMonitorM {
    pub selector: LabelMap,
    pub port: String,
    pub path: String,
    pub interval: Duration,
    pub honor_labels: bool,
}
