//! The [`metrics::Recorder`]: one in-memory cell per metric key, updated under a short lock and
//! drained by the publisher each interval.

use std::collections::HashMap;
use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
    SharedString, Unit,
};
use parking_lot::{Mutex, RwLock};

/// What a cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Samples of one interval: what a CloudWatch `StatisticSet` holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub(crate) count: f64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stats {
    fn one(value: f64) -> Self {
        Self {
            count: 1.0,
            sum: value,
            min: value,
            max: value,
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1.0;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Both sets of samples together.
    pub(crate) fn merge(self, other: Self) -> Self {
        Self {
            count: self.count + other.count,
            sum: self.sum + other.sum,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

#[derive(Debug, Default)]
struct CellState {
    /// The samples since the last drain.
    samples: Option<Stats>,
    /// A gauge's current value, reported again in intervals where it was not set.
    current: Option<f64>,
}

/// One metric key's samples.
#[derive(Debug)]
pub(crate) struct Cell {
    kind: Kind,
    state: Mutex<CellState>,
}

impl Cell {
    fn sample(&self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut state = self.state.lock();
        match &mut state.samples {
            Some(stats) => stats.add(value),
            None => state.samples = Some(Stats::one(value)),
        }
        if self.kind == Kind::Gauge {
            state.current = Some(value);
        }
    }

    fn shift_gauge(&self, delta: f64) {
        let current = self.state.lock().current.unwrap_or(0.0);
        self.sample(current + delta);
    }

    /// The samples since the last drain; a gauge with none reports its current value.
    pub(crate) fn drain(&self) -> Option<Stats> {
        let mut state = self.state.lock();
        state.samples.take().or(state.current.map(Stats::one))
    }
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.sample(value as f64);
    }

    fn absolute(&self, value: u64) {
        self.sample(value as f64);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.shift_gauge(value);
    }

    fn decrement(&self, value: f64) {
        self.shift_gauge(-value);
    }

    fn set(&self, value: f64) {
        self.sample(value);
    }
}

impl HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.sample(value);
    }
}

/// The cells and the units metrics were described with.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    cells: RwLock<HashMap<(Kind, Key), Arc<Cell>>>,
    units: RwLock<HashMap<String, Unit>>,
}

impl Registry {
    fn cell(&self, kind: Kind, key: &Key) -> Arc<Cell> {
        // `metrics::counter!` registers on every call: the common case is a read lock.
        if let Some(cell) = self.cells.read().get(&(kind, key.clone())) {
            return cell.clone();
        }
        self.cells
            .write()
            .entry((kind, key.clone()))
            .or_insert_with(|| {
                Arc::new(Cell {
                    kind,
                    state: Mutex::new(CellState::default()),
                })
            })
            .clone()
    }

    /// Every cell with its key and kind.
    pub(crate) fn cells(&self) -> Vec<(Kind, Key, Arc<Cell>)> {
        self.cells
            .read()
            .iter()
            .map(|((kind, key), cell)| (*kind, key.clone(), cell.clone()))
            .collect()
    }

    /// The unit `name` was described with.
    pub(crate) fn unit(&self, name: &str) -> Option<Unit> {
        self.units.read().get(name).copied()
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.units.write().insert(key.as_str().to_owned(), unit);
        }
    }
}

/// The [`metrics::Recorder`] of a [`crate::CloudWatchPublisher`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct CloudWatchRecorder {
    pub(crate) registry: Arc<Registry>,
}

impl metrics::Recorder for CloudWatchRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.registry.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.registry.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.registry.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.registry.cell(Kind::Counter, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.registry.cell(Kind::Gauge, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.registry.cell(Kind::Histogram, key))
    }
}
