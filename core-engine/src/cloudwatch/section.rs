//! The kept CloudWatch series in the engine's `/metrics` and on its page, through the observe
//! module's section hook.

use std::sync::Arc;

use super::CloudWatch;
use super::prometheus::{FAMILIES, labels, number};
use crate::observe::{Kind, MetricsText, Panel, Section};

/// The most series listed on the page (all of them are in `/metrics`).
const PANEL_ROWS: usize = 200;

/// CloudWatch's section of `/metrics` and the page.
#[derive(Debug)]
pub(crate) struct CloudWatchSection(pub(crate) Arc<CloudWatch>);

impl Section for CloudWatchSection {
    fn write_metrics(&self, out: &mut MetricsText) {
        let series = self.0.series();
        if series.is_empty() {
            return;
        }
        let labels: Vec<Vec<(String, String)>> = series.iter().map(labels).collect();
        for (name, help, read) in FAMILIES {
            out.family(name, Kind::Gauge, help);
            for (one, labels) in series.iter().zip(&labels) {
                let labels: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                out.sample(name, &labels, number(read(one)));
            }
        }
    }

    fn panel(&self) -> Option<Panel> {
        let series = self.0.series();
        if series.is_empty() {
            return None;
        }
        let columns = [
            "namespace",
            "metric",
            "dimensions",
            "unit",
            "points",
            "samples",
            "sum",
            "min",
            "max",
            "latest",
        ];
        let rows = series
            .iter()
            .take(PANEL_ROWS)
            .map(|s| {
                let dimensions: Vec<String> = s
                    .dimensions
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                vec![
                    s.namespace.clone(),
                    s.metric_name.clone(),
                    dimensions.join(", "),
                    s.unit.clone().unwrap_or_default(),
                    s.points.to_string(),
                    number(s.total.sample_count),
                    number(s.total.sum),
                    number(s.total.minimum),
                    number(s.total.maximum),
                    number(s.latest.sum / s.latest.sample_count),
                ]
            })
            .collect();
        let title = if series.len() > PANEL_ROWS {
            format!(
                "CloudWatch metrics (first {PANEL_ROWS} of {} series, last hour)",
                series.len()
            )
        } else {
            "CloudWatch metrics (last hour)".to_owned()
        };
        Some(Panel {
            title,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        })
    }
}
