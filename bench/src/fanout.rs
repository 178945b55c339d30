//! `fanout`: records/s one enhanced fan-out subscription receives while writers fill its shard,
//! and how many records each event carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, ShardIteratorType, StartingPosition,
    SubscribeToShardEventStream,
};

use crate::common::{
    Common, Storage, Table, Target, create_stream, median, num, peak_rss_mib, process_cpu,
    reset_peak_rss, stream_name, text,
};

/// Options of `fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Seconds of writing per run.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Shards, one subscription each.
    #[arg(long, default_value_t = 1)]
    pub shards: i32,
    /// Bytes per record.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Writers (one client each).
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Keeps AWS's throughput limits on (1 MiB/s written and 2 MiB/s read per shard).
    #[arg(long)]
    pub limits: bool,
}

struct Run {
    /// Records/s each subscription received.
    per_subscription: Vec<f64>,
    records_per_event: f64,
    cpu_per_record: f64,
    engine_cpu_per_record: f64,
    rss: f64,
}

async fn subscribe(
    client: &aws_sdk_kinesis::Client,
    consumer: &str,
    shard: &str,
) -> Result<
    aws_sdk_kinesis::primitives::event_stream::EventReceiver<
        SubscribeToShardEventStream,
        aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
    >,
> {
    let position = StartingPosition::builder()
        .r#type(ShardIteratorType::Latest)
        .build()
        .context("starting position")?;
    Ok(client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(position)
        .send()
        .await
        .context("SubscribeToShard")?
        .event_stream)
}

async fn run(args: &FanoutArgs, common: &Common) -> Result<Run> {
    reset_peak_rss();
    let target = Target::start(Storage::Memory, args.limits, common.endpoint.as_deref()).await?;
    let client = target.kinesis();
    let stream = stream_name("fanout");
    create_stream(&client, &stream, args.shards).await?;
    let arn = client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .context("DescribeStreamSummary")?
        .stream_description_summary
        .context("no summary")?
        .stream_arn;
    let consumer = client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("bench")
        .send()
        .await
        .context("RegisterStreamConsumer")?
        .consumer
        .context("no consumer")?
        .consumer_arn;
    for _ in 0..600 {
        let status = client
            .describe_stream_consumer()
            .consumer_arn(&consumer)
            .send()
            .await
            .context("DescribeStreamConsumer")?
            .consumer_description
            .map(|d| d.consumer_status);
        if status == Some(ConsumerStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shards = client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .context("ListShards")?
        .shards
        .unwrap_or_default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let events = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for shard in &shards {
        let mut receiver = subscribe(&client, &consumer, &shard.shard_id).await?;
        let (stop, events) = (stop.clone(), events.clone());
        readers.push(tokio::spawn(async move {
            let mut records = 0u64;
            loop {
                tokio::select! {
                    () = stop.notified() => break,
                    event = receiver.recv() => match event {
                        Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))) => {
                            if !e.records.is_empty() {
                                records += e.records.len() as u64;
                                events.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break, // the subscription ended (5 minutes at most)
                    },
                }
            }
            records
        }));
    }
    let payload = Blob::new(vec![b'x'; args.record_bytes]);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let (cpu, engine_cpu) = (process_cpu(), crate::common::engine_cpu());
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..args.writers {
        let client = target.kinesis();
        let (stream, payload, batch) = (stream.clone(), payload.clone(), args.batch);
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let entries = (0..batch)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("key-{writer}-{}", (n + i) % 10_007))
                            .data(payload.clone())
                            .build()
                            .expect("data and key are set")
                    })
                    .collect();
                // Throttled records are simply not counted: the subscription is measured.
                let _ = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await;
                n += batch;
            }
        }));
    }
    for writer in writers {
        writer.await?;
    }
    // What is still on its way arrives within a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let elapsed = started.elapsed().as_secs_f64();
    stop.notify_waiters();
    let mut per_subscription = Vec::new();
    let mut total = 0;
    for reader in readers {
        let records = reader.await?;
        total += records;
        per_subscription.push(records as f64 / elapsed);
    }
    let cpu = process_cpu().saturating_sub(cpu);
    let engine_cpu = crate::common::engine_cpu().saturating_sub(engine_cpu);
    let rss = peak_rss_mib();
    target.stop().await;
    Ok(Run {
        per_subscription,
        records_per_event: total as f64 / events.load(Ordering::Relaxed).max(1) as f64,
        cpu_per_record: cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
        engine_cpu_per_record: match engine_cpu {
            Duration::ZERO => f64::NAN,
            cpu => cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
        },
        rss,
    })
}

/// `fanout`: one row.
pub async fn fanout(args: &FanoutArgs, common: &Common) -> Result<()> {
    let mut args = args.clone();
    if common.smoke {
        args.seconds = 0.5;
    }
    let mut table = Table::new(
        format!(
            "fanout: {} writers x PutRecords({} x {} B) for {} s, one subscription per shard ({} shards), AWS limits {}; medians of {}",
            args.writers,
            args.batch,
            args.record_bytes,
            args.seconds,
            args.shards,
            if args.limits { "on" } else { "off" },
            common.repeats()
        ),
        &[
            "subscriptions",
            "records/s per sub",
            "MiB/s per sub",
            "records/event",
            "CPU us/rec",
            "engine CPU us/rec",
            "peak RSS MiB",
        ],
    );
    table.note(format!(
        "{}; CPU and RSS are this process's, engine CPU its engine runtime's threads",
        crate::common::machine()
    ));
    let mut runs = Vec::new();
    for _ in 0..common.repeats() {
        runs.push(run(&args, common).await?);
    }
    let per_sub = median(
        runs.iter()
            .flat_map(|r| r.per_subscription.clone())
            .collect(),
    );
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    table.row(
        vec![
            text(args.shards.to_string()),
            num(per_sub, 0),
            num(per_sub * args.record_bytes as f64 / (1 << 20) as f64, 2),
            num(m(&|r| r.records_per_event), 1),
            num(m(&|r| r.cpu_per_record), 2),
            num(m(&|r| r.engine_cpu_per_record), 2),
            num(m(&|r| r.rss), 0),
        ],
        common.json,
    );
    table.finish(common.json);
    Ok(())
}
