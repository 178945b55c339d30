//! The failure policy: bisection down to a poison record, retry and age limits, partial-batch
//! results, the failure sink (a test sink, and the Kinesis dead-letter sink), and reads that
//! cannot succeed (access denied, a deleted stream) ending the worker with an error instead of a
//! loop. Each runs with polling and, where cheap, with enhanced fan-out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use core_engine::Engine;
use core_engine::auth::{AccessKey, Credentials, Rule};
use kcl::failure::{FailureSink, GivenUp, SinkFuture};
use kcl::{
    Checkpointer, Config, FailurePolicy, GiveUpReason, PartialFailure, ProcessRecordsInput,
    ProcessorError, Record, RecordProcessor, Retrieval, Scheduler,
};

use crate::common::{Env, eventually, fast_config};

/// What a batch's records get: `Ok`, or the error to return.
type Decide = Arc<dyn Fn(&[Record]) -> Result<(), ProcessorError> + Send + Sync>;

#[derive(Default)]
struct Seen {
    /// (key, data) of records of calls that succeeded (for a partial failure: the done ones).
    processed: Mutex<Vec<(String, String)>>,
    /// The data of every call, in order.
    calls: Mutex<Vec<Vec<String>>>,
    /// What the sink took.
    sunk: Mutex<Vec<GivenUp>>,
    /// Sink calls to refuse before taking.
    sink_refusals: AtomicUsize,
    events: Mutex<Vec<String>>,
}

impl Seen {
    fn processed_data(&self) -> Vec<String> {
        self.processed
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }

    fn sunk_data(&self) -> Vec<String> {
        self.sunk
            .lock()
            .unwrap()
            .iter()
            .flat_map(|g| g.records.iter().map(data))
            .collect()
    }
}

fn data(r: &Record) -> String {
    String::from_utf8_lossy(&r.data).into_owned()
}

struct Processor {
    seen: Arc<Seen>,
    decide: Decide,
}

impl RecordProcessor for Processor {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.seen
            .calls
            .lock()
            .unwrap()
            .push(input.records.iter().map(data).collect());
        let result = (self.decide)(&input.records);
        let done = match &result {
            Ok(()) => input.records.len(),
            Err(e) => e
                .downcast_ref::<PartialFailure>()
                .and_then(|p| {
                    input.records.iter().position(|r| {
                        r.sequence_number == p.sequence_number
                            && r.sub_sequence_number == p.sub_sequence_number
                    })
                })
                .unwrap_or(0),
        };
        self.seen.processed.lock().unwrap().extend(
            input.records[..done]
                .iter()
                .map(|r| (r.partition_key.clone(), data(r))),
        );
        if result.is_ok() {
            checkpointer.checkpoint().await?;
        }
        result
    }

    async fn lease_lost(&mut self) {
        self.seen.events.lock().unwrap().push("lease_lost".into());
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        // As many processors do: a final checkpoint "at what was delivered".
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn read_failed(&mut self, error: &kcl::Error) {
        self.seen
            .events
            .lock()
            .unwrap()
            .push(format!("read_failed {error}"));
    }
}

/// A sink keeping what it is given, after refusing `sink_refusals` calls.
struct TestSink(Arc<Seen>);

impl FailureSink for TestSink {
    fn give_up<'a>(&'a self, given_up: &'a GivenUp) -> SinkFuture<'a> {
        Box::pin(async move {
            let refuse = self
                .0
                .sink_refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                return Err("sink unavailable".into());
            }
            self.0.sunk.lock().unwrap().push(given_up.clone());
            Ok(())
        })
    }
}

fn fails_on(poison: &'static str) -> Decide {
    Arc::new(move |records: &[Record]| {
        if records.iter().any(|r| data(r) == poison) {
            Err(format!("cannot process {poison}").into())
        } else {
            Ok(())
        }
    })
}

type Factory = Box<dyn Fn(&str) -> Processor + Send + Sync>;

struct Run {
    scheduler: Arc<Scheduler<Factory>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
}

impl Run {
    fn start(env: &Env, stream: &str, seen: &Arc<Seen>, decide: Decide, config: Config) -> Self {
        let (seen, kinesis) = (seen.clone(), env.kinesis.clone());
        let factory: Factory = Box::new(move |_: &str| Processor {
            seen: seen.clone(),
            decide: decide.clone(),
        });
        let scheduler = Arc::new(
            Scheduler::new(
                kinesis,
                env.ddb.clone(),
                &format!("app-{stream}"),
                stream,
                "w1",
                factory,
                config,
            )
            .unwrap(),
        );
        let runner = scheduler.clone();
        let task = tokio::spawn(async move { runner.run().await });
        Self { scheduler, task }
    }

    async fn stop(self) {
        self.scheduler.shutdown();
        self.task.await.unwrap().unwrap();
    }
}

fn config(fan_out: bool, policy: FailurePolicy) -> Config {
    Config {
        failure_policy: policy,
        retrieval: if fan_out {
            Retrieval::fan_out()
        } else {
            Retrieval::Polling
        },
        ..fast_config()
    }
}

/// Puts `items` (key, data) in order, one at a time.
async fn put_all(env: &Env, stream: &str, items: &[(String, String)]) {
    for (key, value) in items {
        env.put(stream, key, value).await;
    }
}

async fn bisect_case(fan_out: bool) {
    let env = Env::start().await;
    env.create_stream("s", 1).await;
    let items: Vec<(String, String)> = (0..40)
        .map(|i| {
            let data = if i == 17 {
                "poison".to_owned()
            } else {
                format!("r{i}")
            };
            (format!("k{}", i % 4), data)
        })
        .collect();
    put_all(&env, "s", &items).await;
    let seen = Arc::new(Seen::default());
    seen.sink_refusals.store(2, Ordering::SeqCst);
    let policy = FailurePolicy {
        bisect_on_error: true,
        max_retries: Some(1),
        ..FailurePolicy::default()
    }
    .with_sink(TestSink(seen.clone()));
    let run = Run::start(
        &env,
        "s",
        &seen,
        fails_on("poison"),
        config(fan_out, policy),
    );
    eventually(
        Duration::from_secs(20),
        "every record processed or given up",
        async || seen.processed.lock().unwrap().len() + seen.sunk_data().len() >= items.len(),
    )
    .await;
    run.stop().await;

    // The poison record alone went to the sink, after two attempts, despite two refusals.
    let sunk = seen.sunk.lock().unwrap().clone();
    assert_eq!(sunk.len(), 1, "{sunk:?}");
    assert_eq!(sunk[0].records.len(), 1);
    assert_eq!(data(&sunk[0].records[0]), "poison");
    assert_eq!(sunk[0].records[0].partition_key, "k1");
    assert_eq!(sunk[0].attempts, 2);
    assert_eq!(sunk[0].reason, GiveUpReason::RetriesExhausted);
    assert_eq!(sunk[0].shard_id, "shardId-000000000000");
    assert!(sunk[0].error.contains("cannot process poison"));
    // Every other record processed exactly once, in order per key.
    let processed = seen.processed.lock().unwrap().clone();
    let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
    for (key, data) in &processed {
        per_key.entry(key.clone()).or_default().push(data.clone());
    }
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for (key, data) in items.iter().filter(|(_, d)| d != "poison") {
        expected.entry(key.clone()).or_default().push(data.clone());
    }
    assert_eq!(per_key, expected);
    // Bisection took a handful of calls, not one per record.
    let calls = seen.calls.lock().unwrap().len();
    assert!(calls < 30, "{calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_isolates_a_poison_record_for_the_sink_and_processes_the_rest_once() {
    bisect_case(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_isolates_a_poison_record_with_fan_out() {
    bisect_case(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_gives_a_failing_batch_up_and_moves_on() {
    let env = Env::start().await;
    env.create_stream("s", 1).await;
    let first: Vec<(String, String)> = ["a", "bad", "c"]
        .iter()
        .map(|d| ("k".to_owned(), d.to_string()))
        .collect();
    put_all(&env, "s", &first).await;
    let seen = Arc::new(Seen::default());
    let policy = FailurePolicy {
        max_retries: Some(2),
        ..FailurePolicy::default()
    }
    .with_sink(TestSink(seen.clone()));
    let run = Run::start(&env, "s", &seen, fails_on("bad"), config(false, policy));
    eventually(Duration::from_secs(20), "the batch given up", async || {
        !seen.sunk.lock().unwrap().is_empty()
    })
    .await;
    env.put("s", "k", "d").await;
    eventually(
        Duration::from_secs(20),
        "the next record processed",
        async || seen.processed_data().contains(&"d".to_owned()),
    )
    .await;
    run.stop().await;
    let sunk = seen.sunk.lock().unwrap().clone();
    assert_eq!(sunk.len(), 1);
    assert_eq!(sunk[0].attempts, 3, "one delivery and two retries");
    assert_eq!(sunk[0].reason, GiveUpReason::RetriesExhausted);
    // Without bisection the whole batch goes.
    assert_eq!(seen.sunk_data(), vec!["a", "bad", "c"]);
    let with_bad = seen
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.contains(&"bad".to_owned()))
        .count();
    assert_eq!(with_bad, 3);
    assert_eq!(seen.processed_data(), vec!["d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_record_age_gives_an_old_failing_batch_up_and_moves_on() {
    for fan_out in [false, true] {
        let env = Env::start().await;
        env.create_stream("s", 1).await;
        env.put("s", "k", "stale").await;
        let seen = Arc::new(Seen::default());
        let policy = FailurePolicy {
            max_record_age: Some(Duration::from_millis(800)),
            ..FailurePolicy::default()
        }
        .with_sink(TestSink(seen.clone()));
        let run = Run::start(&env, "s", &seen, fails_on("stale"), config(fan_out, policy));
        eventually(
            Duration::from_secs(20),
            "the old record given up",
            async || !seen.sunk.lock().unwrap().is_empty(),
        )
        .await;
        env.put("s", "k", "fresh").await;
        eventually(
            Duration::from_secs(20),
            "the next record processed",
            async || seen.processed_data().contains(&"fresh".to_owned()),
        )
        .await;
        run.stop().await;
        let sunk = seen.sunk.lock().unwrap().clone();
        assert_eq!(sunk.len(), 1);
        assert_eq!(
            sunk[0].reason,
            GiveUpReason::RecordTooOld,
            "fan-out {fan_out}"
        );
        assert_eq!(seen.sunk_data(), vec!["stale"]);
        assert!(sunk[0].attempts > 1, "retried while young enough");
        assert_eq!(seen.processed_data(), vec!["fresh"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_result_retries_only_the_rest() {
    for fan_out in [false, true] {
        let env = Env::start().await;
        env.create_stream("s", 1).await;
        let items: Vec<(String, String)> =
            (0..10).map(|i| ("k".to_owned(), format!("r{i}"))).collect();
        put_all(&env, "s", &items).await;
        let seen = Arc::new(Seen::default());
        let reported = Arc::new(AtomicUsize::new(0));
        let decide: Decide = {
            let reported = reported.clone();
            Arc::new(move |records: &[Record]| {
                // Once: everything before r5 done, r5 failed.
                match records.iter().position(|r| data(r) == "r5") {
                    Some(at) if at > 0 && reported.fetch_add(1, Ordering::SeqCst) == 0 => {
                        Err(PartialFailure::at(&records[at], "r5 failed").into())
                    }
                    _ => Ok(()),
                }
            })
        };
        // The default policy: a partial result needs no limits.
        let run = Run::start(
            &env,
            "s",
            &seen,
            decide,
            config(fan_out, FailurePolicy::default()),
        );
        eventually(
            Duration::from_secs(20),
            "every record processed",
            async || seen.processed.lock().unwrap().len() >= items.len(),
        )
        .await;
        run.stop().await;
        let expected: Vec<String> = items.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(seen.processed_data(), expected, "fan-out {fan_out}");
        if reported.load(Ordering::SeqCst) > 0 {
            let calls = seen.calls.lock().unwrap().clone();
            let at = calls
                .iter()
                .position(|c| {
                    c.first().map(String::as_str) != Some("r5") && c.contains(&"r5".into())
                })
                .unwrap();
            assert_eq!(
                calls[at + 1].first().map(String::as_str),
                Some("r5"),
                "the retry starts at the reported record: {calls:?}"
            );
        } else {
            // Every batch began at r5 or did not hold it (fan-out may split): nothing to show.
            assert!(fan_out, "polling reads the ten records in one batch");
        }
        assert!(seen.sunk.lock().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_poison_record_reaches_the_kinesis_dead_letter_stream() {
    let env = Env::start().await;
    env.create_stream("s", 1).await;
    env.create_stream("dead-letters", 1).await;
    let items: Vec<(String, String)> = ["r0", "r1", "poison", "r3"]
        .iter()
        .map(|d| ("k".to_owned(), d.to_string()))
        .collect();
    put_all(&env, "s", &items).await;
    let (_, poison_seq) = {
        // The poison record's sequence number, to find it in the envelope.
        let out = env
            .kinesis
            .get_shard_iterator()
            .stream_name("s")
            .shard_id("shardId-000000000000")
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let records = env
            .kinesis
            .get_records()
            .shard_iterator(out.shard_iterator.unwrap())
            .send()
            .await
            .unwrap()
            .records;
        let poison = records
            .iter()
            .find(|r| r.data.as_ref() == b"poison")
            .unwrap();
        ((), poison.sequence_number.clone())
    };
    let sink = kcl::KinesisFailureSink::for_stream(env.kinesis.clone(), "dead-letters")
        .await
        .unwrap();
    let seen = Arc::new(Seen::default());
    let policy = FailurePolicy {
        bisect_on_error: true,
        max_retries: Some(0),
        ..FailurePolicy::default()
    }
    .with_sink(sink);
    let run = Run::start(&env, "s", &seen, fails_on("poison"), config(false, policy));
    eventually(
        Duration::from_secs(20),
        "the other records processed",
        async || seen.processed.lock().unwrap().len() >= 3,
    )
    .await;
    run.stop().await;
    // Read the dead-letter stream as any consumer would (kpl aggregates: deaggregate).
    let iterator = env
        .kinesis
        .get_shard_iterator()
        .stream_name("dead-letters")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let out = env
        .kinesis
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap();
    let mut envelopes = Vec::new();
    for record in out.records {
        let bytes = bytes::Bytes::from(record.data.into_inner());
        for user in kpl::aggregation::deaggregate(
            record.partition_key.as_deref().unwrap_or_default(),
            None,
            &bytes,
        ) {
            assert_eq!(user.partition_key, "k", "the original partition key");
            envelopes.push(serde_json::from_slice::<serde_json::Value>(&user.data).unwrap());
        }
    }
    assert_eq!(envelopes.len(), 1, "{envelopes:?}");
    let e = &envelopes[0];
    assert_eq!(e["shardId"], "shardId-000000000000");
    assert_eq!(e["sequenceNumber"], poison_seq.as_str());
    assert_eq!(e["subSequenceNumber"], 0);
    assert_eq!(e["partitionKey"], "k");
    assert_eq!(e["reason"], "RetriesExhausted");
    assert_eq!(e["attempts"], 1);
    assert_eq!(e["error"], "cannot process poison");
    assert_eq!(e["data"], "cG9pc29u", "base64 of the original data");
    assert_eq!(seen.processed_data(), vec!["r0", "r1", "r3"]);
}

async fn read_error_case(env: Env, fan_out: bool, delete: bool) {
    if !delete {
        // Access is denied from the start: the engine refuses every read.
        env.create_stream("s", 2).await;
    }
    let seen = Arc::new(Seen::default());
    let run = Run::start(
        &env,
        "s",
        &seen,
        Arc::new(|_: &[Record]| Ok(())),
        config(fan_out, FailurePolicy::default()),
    );
    if delete {
        env.put("s", "k", "before").await;
        eventually(Duration::from_secs(20), "a record read", async || {
            !seen.processed.lock().unwrap().is_empty()
        })
        .await;
        env.kinesis
            .delete_stream()
            .stream_name("s")
            .enforce_consumer_deletion(true)
            .send()
            .await
            .unwrap();
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), run.task)
        .await
        .expect("the worker ends instead of retrying forever")
        .unwrap();
    let error = ended.expect_err("the worker reports the read failure");
    let kcl::Error::ReadFailed { source, .. } = &error else {
        panic!("expected ReadFailed, got {error:?}");
    };
    let code = if delete {
        "ResourceNotFoundException"
    } else {
        "AccessDeniedException"
    };
    assert!(
        matches!(&**source, kcl::Error::Kinesis { code: Some(c), .. } if c == code),
        "{source:?}"
    );
    let events = seen.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("read_failed") && e.contains(code)),
        "{events:?}"
    );
    if !delete {
        // Both leases given up, so a worker allowed to read could take them at once.
        let owners = env.owners("app-s").await;
        assert_eq!(owners.len(), 2);
        assert!(owners.values().all(Option::is_none), "{owners:?}");
    }
}

fn no_reads_engine() -> core_engine::EngineBuilder {
    Engine::builder().credentials(
        Credentials::new().key(
            AccessKey::new("AKIDTEST", "secret")
                .rule(Rule::allow(["*"], ["*"]))
                .rule(Rule::deny(
                    [
                        "kinesis:GetRecords",
                        "kinesis:GetShardIterator",
                        "kinesis:SubscribeToShard",
                    ],
                    ["*"],
                )),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_error_access_denied_ends_the_worker_with_an_error() {
    read_error_case(Env::with(no_reads_engine()).await, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_error_access_denied_ends_a_fan_out_worker_with_an_error() {
    read_error_case(Env::with(no_reads_engine()).await, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_error_stream_deleted_while_reading_ends_the_worker() {
    for fan_out in [false, true] {
        let env = Env::start().await;
        env.create_stream("s", 1).await;
        read_error_case(env, fan_out, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_a_batch_keeps_failing_does_not_checkpoint_past_it() {
    let env = Env::start().await;
    env.create_stream("s", 1).await;
    let (_, ok_seq) = env.put("s", "k", "ok").await;
    let seen = Arc::new(Seen::default());
    let run = Run::start(
        &env,
        "s",
        &seen,
        fails_on("bad"),
        config(false, FailurePolicy::default()),
    );
    eventually(
        Duration::from_secs(20),
        "the first record processed",
        async || !seen.processed.lock().unwrap().is_empty(),
    )
    .await;
    env.put("s", "k", "bad").await;
    eventually(
        Duration::from_secs(20),
        "the bad batch failing",
        async || {
            seen.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.contains(&"bad".to_owned()))
                .count()
                >= 2
        },
    )
    .await;
    // The processor's final checkpoint covers what was done, not the failing batch.
    run.stop().await;
    let leases = kcl::leases::LeaseTable::new(env.ddb.clone(), "app-s")
        .list()
        .await
        .unwrap();
    let checkpoint = leases[0].checkpoint.sequence().unwrap();
    assert_eq!(checkpoint.sequence, ok_seq);
}
