//! Which samples an output takes (series selectors) and a series' label set as
//! the databases see it.

use wasmeter_core::sample::Sample;
use wasmeter_tsdb::Matcher;

/// The metric name's label in Prometheus' data model.
pub const NAME_LABEL: &str = "__name__";

/// A set of series selectors: a sample is taken if any selector matches it.
/// No selectors take every sample.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    selectors: Vec<Vec<Matcher>>,
}

impl Selection {
    /// Parses PromQL series selectors (`trade_vwap{symbol=~"BTC.*"}`, `{__name__=~"trade_.*"}`);
    /// the error names the selector and where in it the problem is.
    pub fn parse<S: AsRef<str>>(selectors: &[S]) -> Result<Self, String> {
        let selectors = selectors
            .iter()
            .map(|s| {
                wasmeter_history::parse_selector(s.as_ref())
                    .map_err(|e| format!("`{}`: {e}", s.as_ref()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { selectors })
    }

    /// Whether the output takes `sample`.
    pub fn matches(&self, sample: &Sample) -> bool {
        self.selectors.is_empty()
            || self.selectors.iter().any(|matchers| {
                matchers.iter().all(|m| {
                    let v = match m.name() {
                        NAME_LABEL => sample.name.as_str(),
                        name => sample.label(name).unwrap_or(""),
                    };
                    m.matches(v)
                })
            })
    }
}

/// A series' labels: `__name__`, the sample's labels with a value, and the
/// output's extra labels the sample lacks, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesLabels(Vec<(String, String)>);

impl SeriesLabels {
    /// The labels of `sample` with `extra` filled in.
    pub fn of(sample: &Sample, extra: &[(String, String)]) -> Self {
        let mut pairs = Vec::with_capacity(sample.labels.len() + extra.len() + 1);
        pairs.push((NAME_LABEL.to_string(), sample.name.to_string()));
        for l in &sample.labels {
            if !l.value.is_empty() && l.name != NAME_LABEL {
                pairs.push((l.name.to_string(), l.value.to_string()));
            }
        }
        for (name, value) in extra {
            if sample.label(name).is_none() && name != NAME_LABEL {
                pairs.push((name.clone(), value.clone()));
            }
        }
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Self(pairs)
    }

    /// Name and value pairs, sorted by name.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::{Label, MetricKind};

    fn s(name: &str, labels: &[(&str, &str)]) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value: 1.0,
            kind: MetricKind::Gauge,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn selectors_are_ored_and_their_matchers_anded() {
        let sel =
            Selection::parse(&["trade_vwap{symbol=~\"BTC.*\"}", "{__name__=\"up\"}"]).unwrap();
        assert!(sel.matches(&s("trade_vwap", &[("symbol", "BTC-USD")])));
        assert!(!sel.matches(&s("trade_vwap", &[("symbol", "ETH-USD")])));
        assert!(!sel.matches(&s("trade_count", &[("symbol", "BTC-USD")])));
        assert!(sel.matches(&s("up", &[])));
        assert!(
            Selection::parse::<&str>(&[])
                .unwrap()
                .matches(&s("any", &[]))
        );
    }

    #[test]
    fn a_bad_selector_is_named() {
        let e = Selection::parse(&["ok", "bad{"]).unwrap_err();
        assert!(e.starts_with("`bad{`: "), "{e}");
    }
}
