//! Telemetry readings, the simulated devices that send them, and the anomaly detector.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a device measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Degrees Celsius.
    Temperature,
    /// Vibration amplitude in g.
    Vibration,
}

/// One reading, as a device sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Device id, also the partition key.
    pub device: String,
    /// The device's reading counter, from 0.
    pub seq: u64,
    /// Temperature.
    pub temperature: f64,
    /// Vibration.
    pub vibration: f64,
}

/// An alert, as published to the alerts stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The device.
    pub device: String,
    /// The reading that raised it.
    pub seq: u64,
    /// The metric out of line.
    pub metric: Metric,
    /// The value read.
    pub value: f64,
    /// How many standard deviations it is from the device's recent mean.
    pub z: f64,
}

/// Readings before a device's first injected anomaly (more than the detector's warm-up).
pub const FIRST_ANOMALY_AFTER: u64 = 12;

/// Simulated devices: each has its own normal level and bounded noise (±0.5 °C, ±0.05 g), so
/// a normal reading is never far out; anomalies are spikes of 10 to 20 °C or 4 to 6 times the
/// vibration, every 15 to 30 readings of a device. Everything is drawn from one seeded RNG.
#[derive(Debug)]
pub struct Devices {
    rng: StdRng,
    /// Per device: level (temperature, vibration), next seq, seq of the next anomaly.
    devices: Vec<((f64, f64), u64, u64)>,
}

impl Devices {
    /// `count` devices (at least one), reproducible from `seed`.
    pub fn new(count: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let devices = (0..count.max(1))
            .map(|_| {
                let level = (rng.random_range(20.0..60.0), rng.random_range(0.5..2.0));
                (level, 0, FIRST_ANOMALY_AFTER + rng.random_range(0..10))
            })
            .collect();
        Self { rng, devices }
    }

    /// The next reading of a random device, and the metric made anomalous, if one was.
    pub fn next_reading(&mut self) -> (Reading, Option<Metric>) {
        let n = self.rng.random_range(0..self.devices.len());
        let temperature = self.rng.random_range(-0.5..0.5);
        let vibration = self.rng.random_range(-0.05..0.05);
        let spike = self.rng.random_range(10.0..20.0);
        let factor = self.rng.random_range(4.0..6.0);
        let metric = if self.rng.random_bool(0.5) {
            Metric::Temperature
        } else {
            Metric::Vibration
        };
        let gap = self.rng.random_range(15..30);
        let ((t0, v0), seq, next_anomaly) = &mut self.devices[n];
        let mut reading = Reading {
            device: format!("device-{n:03}"),
            seq: *seq,
            temperature: *t0 + temperature,
            vibration: *v0 + vibration,
        };
        let anomaly = (*seq == *next_anomaly).then(|| {
            match metric {
                Metric::Temperature => reading.temperature += spike,
                Metric::Vibration => reading.vibration *= factor,
            }
            *next_anomaly += gap;
            metric
        });
        *seq += 1;
        (reading, anomaly)
    }
}

/// Readings a device's statistics learn from before it may alert.
pub const WARM_UP: u64 = 10;
/// Alert beyond this many standard deviations.
pub const Z_THRESHOLD: f64 = 6.0;
/// Weight of a new reading in the moving averages.
const ALPHA: f64 = 0.1;

/// An exponentially weighted mean and variance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma {
    /// Mean.
    pub mean: f64,
    /// Variance.
    pub var: f64,
}

impl Ewma {
    fn update(&mut self, x: f64, first: bool) {
        if first {
            self.mean = x;
            return;
        }
        let d = x - self.mean;
        self.mean += ALPHA * d;
        self.var = (1.0 - ALPHA) * (self.var + ALPHA * d * d);
    }

    /// Distance of `x` from the mean in standard deviations; `floor` is the smallest standard
    /// deviation believed (the sensor's resolution), so a quiet device does not alert on noise.
    fn z(&self, x: f64, floor: f64) -> f64 {
        (x - self.mean).abs() / self.var.sqrt().max(floor)
    }
}

/// A device's rolling statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceStats {
    /// Readings learned from.
    pub count: u64,
    /// Last reading applied, so a redelivered reading is not learned twice.
    pub last_seq: Option<u64>,
    /// Temperature statistics.
    pub temperature: Ewma,
    /// Vibration statistics.
    pub vibration: Ewma,
}

/// Per-device statistics of one shard.
pub type Detector = HashMap<String, DeviceStats>;

/// Checks `reading` against its device's statistics and learns from it if it is normal (an
/// anomaly would skew the baseline). Returns the alerts it raises; none for a reading already
/// applied or during warm-up.
pub fn observe(detector: &mut Detector, reading: &Reading) -> Vec<Alert> {
    let stats = detector.entry(reading.device.clone()).or_default();
    if stats.last_seq.is_some_and(|last| reading.seq <= last) {
        return Vec::new();
    }
    stats.last_seq = Some(reading.seq);
    let checks = [
        (
            Metric::Temperature,
            reading.temperature,
            stats.temperature,
            0.2,
        ),
        (Metric::Vibration, reading.vibration, stats.vibration, 0.02),
    ];
    let alerts: Vec<Alert> = checks
        .into_iter()
        .filter(|_| stats.count >= WARM_UP)
        .map(|(metric, value, ewma, floor)| Alert {
            device: reading.device.clone(),
            seq: reading.seq,
            metric,
            value,
            z: ewma.z(value, floor),
        })
        .filter(|alert| alert.z > Z_THRESHOLD)
        .collect();
    if alerts.is_empty() {
        let first = stats.count == 0;
        stats.temperature.update(reading.temperature, first);
        stats.vibration.update(reading.vibration, first);
        stats.count += 1;
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_alert_noise_does_not_and_replays_are_ignored() {
        let mut devices = Devices::new(3, 11);
        let mut detector = Detector::new();
        let (mut injected, mut alerted) = (Vec::new(), Vec::new());
        for _ in 0..600 {
            let (reading, anomaly) = devices.next_reading();
            if let Some(metric) = anomaly {
                injected.push((reading.device.clone(), reading.seq, metric));
            }
            for alert in observe(&mut detector, &reading) {
                alerted.push((alert.device, alert.seq, alert.metric));
            }
            assert!(observe(&mut detector, &reading).is_empty(), "a replay");
        }
        assert!(injected.len() >= 10, "{injected:?}");
        assert_eq!(alerted, injected);
    }
}
