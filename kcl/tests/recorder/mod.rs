//! A metrics recorder for tests that keeps every value: the debugging recorder's snapshots
//! reset counters and gauges to 0, so a value read between two updates would be lost.
//! Shared by the test binaries that read kcl's metrics (each installs it process-wide once).

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// Every metric registered in this process, read by the tests while the workers run.
pub struct Store(Registry<Key, AtomicStorage>);

/// The recorder installed for this binary.
#[derive(Clone)]
struct Installed(Arc<Store>);

impl metrics::Recorder for Installed {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .0
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .0
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .0
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

/// The process-wide store, installed by the first test that asks.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = Arc::new(Store(Registry::atomic()));
        metrics::set_global_recorder(Installed(store.clone()))
            .expect("the only recorder in this binary");
        store
    })
}

impl Store {
    /// Whether `key` is metric `name` with every label of `labels`.
    fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
        key.name() == name
            && labels
                .iter()
                .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
    }

    /// The sum of counter `name` over the series with `labels`; `None` when none is registered.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        self.0
            .get_counter_handles()
            .into_iter()
            .filter(|(key, _)| Self::matches(key, name, labels))
            .fold(None, |sum, (_, c)| {
                Some(sum.unwrap_or(0) + c.load(std::sync::atomic::Ordering::SeqCst))
            })
    }

    /// The value of gauge `name` with `labels`; `None` when it is not registered.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .get_gauge_handles()
            .into_iter()
            .find(|(key, _)| Self::matches(key, name, labels))
            .map(|(_, g)| f64::from_bits(g.load(std::sync::atomic::Ordering::SeqCst)))
    }

    /// The samples of histogram `name` over the series with `labels`.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.0
            .get_histogram_handles()
            .into_iter()
            .filter(|(key, _)| Self::matches(key, name, labels))
            .flat_map(|(_, h)| h.data())
            .collect()
    }
}
