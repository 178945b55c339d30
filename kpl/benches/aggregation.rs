//! Codec micro-benchmark: user records/s through `Aggregator` (size_with + push per record, finish
//! per aggregate) and through `deaggregate`, for 100-byte records with a distinct partition key
//! each, in aggregates of at most 51,200 bytes (the KPL's AggregationMaxSize default).
//!
//! `cargo bench -p kpl --bench aggregation` (optimized); `cargo test -p kpl --bench aggregation`
//! runs it unoptimized as a smoke test.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use kpl::aggregation::{Aggregator, deaggregate};

const RECORDS: usize = 200_000;
const MAX_SIZE: usize = 51_200;

fn main() {
    let keys: Vec<String> = (0..RECORDS)
        .map(|i| format!("partition-key-{i:012}"))
        .collect();
    let data = [0x5Au8; 100];

    let started = Instant::now();
    let mut aggregates = Vec::new();
    let mut aggregator = Aggregator::with_capacity(MAX_SIZE);
    for key in &keys {
        if aggregator.size_with(key, None, data.len()) > MAX_SIZE {
            let full = std::mem::replace(&mut aggregator, Aggregator::with_capacity(MAX_SIZE));
            aggregates.push(Bytes::from(full.finish()));
        }
        aggregator.push(key, None, &data);
    }
    aggregates.push(Bytes::from(aggregator.finish()));
    report("aggregate", started, aggregates.len());

    let started = Instant::now();
    let mut count = 0;
    for aggregate in &aggregates {
        count += black_box(deaggregate("a", None, aggregate)).len();
    }
    assert_eq!(count, RECORDS);
    report("deaggregate", started, aggregates.len());
}

fn report(what: &str, started: Instant, aggregates: usize) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{what}: {RECORDS} user records in {aggregates} aggregates, {seconds:.3} s, {:.0} user records/s",
        RECORDS as f64 / seconds
    );
}
