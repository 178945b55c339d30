//! The soak's verdict, computed from what the producer acknowledged and what the workers logged.
//!
//! Definitions (what the summary's numbers mean):
//!
//! - **acknowledged**: records Kinesis accepted, as the producer's delivery futures reported
//!   them, each with its position (shard, sequence number, sub-sequence number). Every record
//!   carries a unique payload id as its data.
//! - **processed**: distinct acknowledged payload ids found in the workers' logs.
//! - **duplicates**: deliveries beyond the first of a payload id (replays after a failover,
//!   a worker killed before its checkpoint, or a put retried after an answer was lost).
//! - **lost**: acknowledged payload ids never delivered. Must be 0.
//! - **order violations**: for each partition key, take the deliveries of its acknowledged
//!   positions in delivery order (batches ordered by their wall-clock start, records in batch
//!   order), keep the first delivery of each position, and count the records delivered after a
//!   record of the same key with a higher position. Replays from a checkpoint re-deliver
//!   positions already seen, so they are duplicates, not violations. Copies at positions that
//!   were not acknowledged (a put that landed although its answer was lost) are left out. Must be 0.
//! - **engine exits**: the engine exiting although the soak did not kill it (a crash). Must be 0.
//! - **overlapping processing**: two processors of different workers whose holdings of one shard
//!   overlap in time, a holding being the span from the start of a processor's first batch to
//!   the end of its last on that shard; and, finer, batches of two workers on one shard running
//!   at the same moment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::log::BatchLine;

/// A record the producer saw acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The payload id (the record's data, in decimal).
    pub id: u64,
    /// Partition key.
    pub key: String,
    /// Shard that holds it.
    pub shard: String,
    /// Sequence number.
    pub sequence: u128,
    /// Sub-sequence number inside its aggregate (0 when not aggregated).
    pub sub_sequence: u64,
}

/// What the chaos did, counted by the soak's driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChaosCounts {
    /// SIGKILLs sent to the engine.
    pub engine_kills: u64,
    /// Times the engine exited although nobody killed it (a crash).
    pub engine_exits: u64,
    /// Times the engine did not come back after a restart attempt (it printed an error or
    /// exited); the data directory may be unreadable.
    pub engine_start_failures: u64,
    /// SIGKILLs sent to workers.
    pub worker_kills: u64,
    /// SIGSTOPs (each followed by a SIGCONT) sent to workers.
    pub worker_pauses: u64,
    /// Workers that exited although nobody stopped them (restarted like killed ones).
    pub worker_exits: u64,
    /// Shard splits that succeeded.
    pub splits: u64,
    /// Shard merges that succeeded.
    pub merges: u64,
    /// Reshards refused or failed (engine down, a fault, stream still updating).
    pub reshard_errors: u64,
    /// Fault rules installed.
    pub fault_rules: u64,
    /// Times an installed rule hit a call.
    pub faults_fired: u64,
    /// Records the producer finally failed to deliver (expired during engine downtime, ...).
    pub put_failures: u64,
}

/// The checked summary of a soak run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The seed of the chaos schedule.
    pub seed: u64,
    /// Seconds of chaos.
    pub duration_s: u64,
    /// Records acknowledged to the producer.
    pub acknowledged: u64,
    /// Distinct acknowledged records processed.
    pub processed: u64,
    /// Distinct records processed that were never acknowledged (puts that failed but landed).
    pub processed_unacknowledged: u64,
    /// Record deliveries in all.
    pub deliveries: u64,
    /// Deliveries beyond the first of a record.
    pub duplicates: u64,
    /// Acknowledged and never processed.
    pub lost: u64,
    /// Per-key order violations.
    pub order_violations: u64,
    /// Pairs of holdings of one shard by two workers that overlap in time.
    pub overlapping_holdings: u64,
    /// Batches started on a shard while another worker's batch on it was running.
    pub overlapping_batches: u64,
    /// What the chaos did.
    pub chaos: ChaosCounts,
    /// Whether the fleet caught up with every acknowledged record before the deadline.
    pub drained: bool,
    /// Whether overlapping processing fails the run.
    pub overlap_fails: bool,
    /// Why the chaos or the drain stopped early (the engine would not restart), if it did.
    pub aborted: Option<String>,
    /// The first few lost records, `id key shard sequence`.
    pub lost_examples: Vec<String>,
    /// The first few order violations.
    pub violation_examples: Vec<String>,
    /// The first few overlaps.
    pub overlap_examples: Vec<String>,
    /// Why the run fails; empty when it passes.
    pub failures: Vec<String>,
}

const EXAMPLES: usize = 5;

/// One delivery of a record, as it sorts into delivery order.
struct Delivered<'a> {
    id: u64,
    sequence: Option<u128>,
    sub_sequence: u64,
    batch: &'a BatchLine,
}

/// Compares what was acknowledged with what was processed. `chaos`, `seed`, `duration_s`,
/// `drained`, `overlap_fails` and `aborted` are copied into the summary; `failures` is filled.
pub fn analyze(acks: &[Ack], batches: &[BatchLine], base: Summary) -> Summary {
    let mut summary = base;
    summary.acknowledged = acks.len() as u64;
    let by_id: HashMap<u64, &Ack> = acks.iter().map(|a| (a.id, a)).collect();

    // Delivery order: batches by wall-clock start; a worker's batches of one shard are serial.
    let mut ordered: Vec<&BatchLine> = batches.iter().collect();
    ordered.sort_by(|a, b| {
        (a.start_us, &a.worker, a.processor, &a.shard).cmp(&(
            b.start_us,
            &b.worker,
            b.processor,
            &b.shard,
        ))
    });
    let deliveries = ordered.iter().flat_map(|batch| {
        batch.records.iter().filter_map(move |r| {
            Some(Delivered {
                id: r.3.parse().ok()?,
                sequence: r.1.parse().ok(),
                sub_sequence: r.2,
                batch,
            })
        })
    });

    let mut seen: HashSet<u64> = HashSet::new();
    let mut positions_seen: HashSet<u64> = HashSet::new();
    // Highest acknowledged position first-delivered so far, per key, and its payload id.
    let mut highest: HashMap<&str, ((u128, u64), u64)> = HashMap::new();
    for d in deliveries {
        summary.deliveries += 1;
        let ack = by_id.get(&d.id);
        if seen.insert(d.id) {
            if ack.is_some() {
                summary.processed += 1;
            } else {
                summary.processed_unacknowledged += 1;
            }
        } else {
            summary.duplicates += 1;
        }
        let Some(ack) = ack else { continue };
        let position = (ack.sequence, ack.sub_sequence);
        if d.sequence != Some(ack.sequence) || d.sub_sequence != ack.sub_sequence {
            continue;
        }
        if !positions_seen.insert(d.id) {
            continue;
        }
        match highest.get(ack.key.as_str()) {
            Some(&(top, top_id)) if position < top => {
                summary.order_violations += 1;
                if summary.violation_examples.len() < EXAMPLES {
                    summary.violation_examples.push(format!(
                        "key {}: record {} ({} {}/{}) delivered by {} after record {top_id} \
                         ({}/{})",
                        ack.key,
                        ack.id,
                        ack.shard,
                        ack.sequence,
                        ack.sub_sequence,
                        d.batch.worker,
                        top.0,
                        top.1
                    ));
                }
            }
            _ => {
                highest.insert(&ack.key, (position, ack.id));
            }
        }
    }

    let mut lost: Vec<&Ack> = acks.iter().filter(|a| !seen.contains(&a.id)).collect();
    lost.sort_by_key(|a| a.id);
    summary.lost = lost.len() as u64;
    summary.lost_examples = lost
        .iter()
        .take(EXAMPLES)
        .map(|a| {
            format!(
                "record {} key {} on {} at {}/{}",
                a.id, a.key, a.shard, a.sequence, a.sub_sequence
            )
        })
        .collect();

    let (holdings, batches_overlapping, examples) = overlaps(batches);
    summary.overlapping_holdings = holdings;
    summary.overlapping_batches = batches_overlapping;
    summary.overlap_examples = examples;

    summary.failures = failures(&summary);
    summary
}

/// A processor: (worker, its number in the worker).
type Processor<'a> = (&'a str, u64);
/// A span of wall-clock microseconds: (first start, last end).
type Span = (u64, u64);

/// Counts overlapping holdings and batches per shard; gives a few examples.
fn overlaps(batches: &[BatchLine]) -> (u64, u64, Vec<String>) {
    // shard -> processor -> the span of its batches on the shard
    let mut spans: BTreeMap<&str, BTreeMap<Processor<'_>, Span>> = BTreeMap::new();
    let mut per_shard: BTreeMap<&str, Vec<&BatchLine>> = BTreeMap::new();
    for b in batches {
        let span = spans
            .entry(&b.shard)
            .or_default()
            .entry((&b.worker, b.processor))
            .or_insert((b.start_us, b.end_us));
        span.0 = span.0.min(b.start_us);
        span.1 = span.1.max(b.end_us);
        per_shard.entry(&b.shard).or_default().push(b);
    }
    let mut examples = Vec::new();
    let mut holdings = 0;
    for (shard, spans) in &spans {
        let spans: Vec<(&Processor<'_>, &Span)> = spans.iter().collect();
        for (i, (a, sa)) in spans.iter().enumerate() {
            for (b, sb) in &spans[i + 1..] {
                if a.0 != b.0 && sa.0 < sb.1 && sb.0 < sa.1 {
                    holdings += 1;
                    if examples.len() < EXAMPLES {
                        examples.push(format!(
                            "{shard}: {} (processor {}) held it {}..{} and {} (processor {}) \
                             {}..{} (µs since epoch)",
                            a.0, a.1, sa.0, sa.1, b.0, b.1, sb.0, sb.1
                        ));
                    }
                }
            }
        }
    }
    let mut overlapping_batches = 0;
    for list in per_shard.values_mut() {
        list.sort_by_key(|b| b.start_us);
        // Batches still running when the next one starts.
        let mut running: Vec<&BatchLine> = Vec::new();
        for b in list.iter() {
            running.retain(|r| r.end_us > b.start_us);
            if running.iter().any(|r| r.worker != b.worker) {
                overlapping_batches += 1;
            }
            running.push(b);
        }
    }
    (holdings, overlapping_batches, examples)
}

/// The reasons the run fails.
fn failures(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(reason) = &s.aborted {
        out.push(format!("aborted: {reason}"));
    }
    if s.acknowledged == 0 {
        out.push("nothing was acknowledged".to_owned());
    }
    if s.chaos.engine_exits > 0 {
        out.push(format!(
            "the engine exited {} times without being killed",
            s.chaos.engine_exits
        ));
    }
    if s.lost > 0 {
        out.push(format!(
            "{} acknowledged records were never processed",
            s.lost
        ));
    }
    if s.order_violations > 0 {
        out.push(format!("{} per-key order violations", s.order_violations));
    }
    if s.overlap_fails && s.overlapping_holdings > 0 {
        out.push(format!(
            "{} overlapping holdings of a shard by two workers",
            s.overlapping_holdings
        ));
    }
    out
}

impl Summary {
    /// Whether the run passed its checks.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The summary as one JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The summary as a table, with the checked rows marked.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.chaos;
        let overlap_rule = if self.overlap_fails {
            "must be 0"
        } else {
            "reported"
        };
        let rows: Vec<(&str, u64, &str, bool)> = vec![
            (
                "acknowledged",
                self.acknowledged,
                "must be > 0",
                self.acknowledged > 0,
            ),
            ("processed (distinct)", self.processed, "", true),
            (
                "processed, not acknowledged",
                self.processed_unacknowledged,
                "",
                true,
            ),
            ("deliveries", self.deliveries, "", true),
            ("duplicates", self.duplicates, "", true),
            ("lost", self.lost, "must be 0", self.lost == 0),
            (
                "per-key order violations",
                self.order_violations,
                "must be 0",
                self.order_violations == 0,
            ),
            (
                "overlapping holdings",
                self.overlapping_holdings,
                overlap_rule,
                !self.overlap_fails || self.overlapping_holdings == 0,
            ),
            ("overlapping batches", self.overlapping_batches, "", true),
            ("engine kills", c.engine_kills, "", true),
            (
                "engine exits (unasked)",
                c.engine_exits,
                "must be 0",
                c.engine_exits == 0,
            ),
            ("engine start failures", c.engine_start_failures, "", true),
            ("worker kills", c.worker_kills, "", true),
            ("worker pauses", c.worker_pauses, "", true),
            ("worker exits (unasked)", c.worker_exits, "", true),
            ("splits", c.splits, "", true),
            ("merges", c.merges, "", true),
            ("reshard errors", c.reshard_errors, "", true),
            ("fault rules", c.fault_rules, "", true),
            ("faults fired", c.faults_fired, "", true),
            ("put failures", c.put_failures, "", true),
        ];
        let _ = writeln!(
            out,
            "chaos soak: seed {}, {} s of chaos, drained: {}",
            self.seed, self.duration_s, self.drained
        );
        for (name, value, rule, ok) in rows {
            let mark = match (rule.is_empty(), ok) {
                (true, _) => String::new(),
                (false, true) => format!("ok ({rule})"),
                (false, false) => format!("FAIL ({rule})"),
            };
            let _ = writeln!(out, "  {name:<28} {value:>10}  {mark}");
        }
        for (title, list) in [
            ("lost", &self.lost_examples),
            ("order violations", &self.violation_examples),
            ("overlaps", &self.overlap_examples),
        ] {
            for line in list {
                let _ = writeln!(out, "  {title}: {line}");
            }
        }
        let _ = writeln!(
            out,
            "verdict: {}",
            if self.passed() {
                "OK".to_owned()
            } else {
                format!("FAILED: {}", self.failures.join("; "))
            }
        );
        out
    }
}
