//! Multi-stream applications: one scheduler reading a set of streams, with the Java KCL's
//! multi-stream lease keys, following a tracker that adds and removes streams while it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl::leases::{Lease, LeaseTable};
use kcl::{
    Checkpointer, Config, InitializationInput, ProcessRecordsInput, ProcessorError,
    RecordProcessor, Scheduler,
};

use crate::common::{Env, eventually, fast_config};
use crate::fan_out::{assert_no_polling, engine, fan_out};

/// (stream as the processor learned it, lease key, partition key, data), in processing order.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

struct StreamRecorder {
    key: String,
    stream: String,
    seen: Seen,
    stopped: Arc<Mutex<Vec<String>>>,
}

impl RecordProcessor for StreamRecorder {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.stream = input.stream;
        assert!(self.key.ends_with(&input.shard_id), "{}", self.key);
        Ok(())
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        for r in &input.records {
            self.seen.lock().unwrap().push((
                self.stream.clone(),
                self.key.clone(),
                r.partition_key.clone(),
                String::from_utf8_lossy(&r.data).into_owned(),
            ));
        }
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.stopped.lock().unwrap().push(self.key.clone());
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

type RecorderFactory = Box<dyn Fn(&str) -> StreamRecorder + Send + Sync>;

struct App {
    scheduler: Arc<Scheduler<RecorderFactory>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
    seen: Seen,
    stopped: Arc<Mutex<Vec<String>>>,
}

/// A worker of application `app` reading the streams `tracked` holds.
fn start(env: &Env, app: &str, tracked: &Arc<Mutex<Vec<String>>>, config: Config) -> App {
    let seen: Seen = Arc::default();
    let stopped: Arc<Mutex<Vec<String>>> = Arc::default();
    let factory: RecorderFactory = {
        let (seen, stopped) = (seen.clone(), stopped.clone());
        Box::new(move |key: &str| StreamRecorder {
            key: key.to_owned(),
            stream: String::new(),
            seen: seen.clone(),
            stopped: stopped.clone(),
        })
    };
    let tracker = {
        let tracked = tracked.clone();
        move || tracked.lock().unwrap().clone()
    };
    let scheduler = Arc::new(
        Scheduler::builder()
            .application(app)
            .stream_tracker(tracker)
            .worker_id("w1")
            .kinesis(env.kinesis.clone())
            .dynamodb(env.ddb.clone())
            .processor_factory(factory)
            .config(config)
            .build()
            .unwrap(),
    );
    let runner = scheduler.clone();
    let task = tokio::spawn(async move { runner.run().await });
    App {
        scheduler,
        task,
        seen,
        stopped,
    }
}

/// Puts `count` records to `stream`, data `stream-<round>-<i>`, over five partition keys.
async fn put(env: &Env, stream: &str, round: usize, count: usize) -> Vec<String> {
    let mut data = Vec::new();
    for i in 0..count {
        let d = format!("{stream}-{round}-{i:03}");
        env.put(stream, &format!("{stream}-k{}", i % 5), &d).await;
        data.push(d);
    }
    data
}

/// Whether every item of `expected` was processed.
fn processed_all(seen: &Seen, expected: &[String]) -> bool {
    let seen = seen.lock().unwrap();
    expected
        .iter()
        .all(|d| seen.iter().any(|(_, _, _, s)| s == d))
}

/// Every record was attributed to its own stream, and, per partition key, first deliveries
/// come in the order the records were put.
fn assert_streams_and_order(seen: &Seen) {
    let seen = seen.lock().unwrap();
    let mut firsts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut delivered: HashMap<String, ()> = HashMap::new();
    for (stream, key, pk, data) in seen.iter() {
        assert!(
            data.starts_with(&format!("{stream}-")),
            "{data} reported as from stream {stream}"
        );
        assert!(
            key.contains(&format!(":{stream}:")),
            "{data} processed under lease {key}"
        );
        if delivered.insert(data.clone(), ()).is_none() {
            firsts
                .entry((stream.clone(), pk.clone()))
                .or_default()
                .push(data.clone());
        }
    }
    for (key, order) in firsts {
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "order of key {key:?}");
    }
}

async fn leases(env: &Env, app: &str) -> Vec<Lease> {
    LeaseTable::new(env.ddb.clone(), app).list().await.unwrap()
}

fn config() -> Config {
    Config {
        shard_sync_interval: Duration::from_millis(300),
        former_stream_lease_retention: Duration::from_secs(1),
        ..fast_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stream_application_follows_streams_added_and_removed_while_running() {
    let env = Env::start().await;
    for (stream, shards) in [("ms-a", 2), ("ms-b", 1), ("ms-c", 2), ("ms-d", 1)] {
        env.create_stream(stream, shards).await;
    }
    let mut expected = Vec::new();
    for stream in ["ms-a", "ms-b", "ms-c"] {
        expected.extend(put(&env, stream, 0, 20).await);
    }
    let tracked = Arc::new(Mutex::new(vec![
        "ms-a".to_string(),
        "ms-b".to_string(),
        "ms-c".to_string(),
    ]));
    let app = start(&env, "ms-app", &tracked, config());
    eventually(
        Duration::from_secs(20),
        "the three streams processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;

    // The Java KCL's multi-stream keys: account:stream:creationEpoch:shardId, with streamName
    // holding the stream identifier.
    let table = leases(&env, "ms-app").await;
    assert_eq!(table.len(), 5, "{table:?}");
    for lease in &table {
        let parts: Vec<&str> = lease.key.split(':').collect();
        assert_eq!(parts.len(), 4, "{}", lease.key);
        assert!(
            ["ms-a", "ms-b", "ms-c"].contains(&parts[1]),
            "{}",
            lease.key
        );
        assert!(parts[2].parse::<u64>().is_ok(), "{}", lease.key);
        assert_eq!(lease.stream.as_deref(), Some(parts[..3].join(":").as_str()));
        assert!(lease.shard_id().starts_with("shardId-"), "{}", lease.key);
    }

    // d added, c removed, while running; more records everywhere.
    *tracked.lock().unwrap() = vec!["ms-a".into(), "ms-b".into(), "ms-d".into()];
    for stream in ["ms-a", "ms-b", "ms-d"] {
        expected.extend(put(&env, stream, 1, 20).await);
    }
    eventually(
        Duration::from_secs(20),
        "a, b and the added d processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the removed stream's leases deleted",
        async || {
            let table = leases(&env, "ms-app").await;
            !table.iter().any(|l| l.key.contains(":ms-c:"))
                && table.iter().filter(|l| l.key.contains(":ms-d:")).count() == 1
        },
    )
    .await;
    assert_eq!(app.scheduler.streams(), ["ms-a", "ms-b", "ms-d"]);
    // The removed stream's processors were stopped gracefully (and could checkpoint).
    let stopped = app.stopped.lock().unwrap().clone();
    assert_eq!(
        stopped.iter().filter(|k| k.contains(":ms-c:")).count(),
        2,
        "{stopped:?}"
    );
    // Records put to the removed stream are no longer read.
    let late = put(&env, "ms-c", 2, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !late
            .iter()
            .any(|d| processed_all(&app.seen, std::slice::from_ref(d)))
    );
    assert_streams_and_order(&app.seen);

    app.scheduler.shutdown();
    app.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stream_fan_out_registers_one_consumer_per_stream() {
    let env = Env::with(engine(Duration::from_secs(2))).await;
    env.create_stream("mf-a", 1).await;
    env.create_stream("mf-b", 2).await;
    let mut expected = Vec::new();
    for stream in ["mf-a", "mf-b"] {
        expected.extend(put(&env, stream, 0, 15).await);
    }
    let tracked = Arc::new(Mutex::new(vec!["mf-a".to_string(), "mf-b".to_string()]));
    let app = start(
        &env,
        "mf-app",
        &tracked,
        Config {
            shard_sync_interval: Duration::from_millis(300),
            ..fan_out(Duration::from_secs(3))
        },
    );
    eventually(
        Duration::from_secs(20),
        "both streams processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;
    for stream in ["mf-a", "mf-b"] {
        let arn = env
            .kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap()
            .stream_description_summary
            .unwrap()
            .stream_arn;
        let consumers: Vec<String> = env
            .kinesis
            .list_stream_consumers()
            .stream_arn(arn)
            .send()
            .await
            .unwrap()
            .consumers
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.consumer_name)
            .collect();
        assert_eq!(consumers, ["mf-app"], "{stream}");
    }
    // More records arrive through the subscriptions.
    for stream in ["mf-a", "mf-b"] {
        expected.extend(put(&env, stream, 1, 15).await);
    }
    eventually(
        Duration::from_secs(20),
        "later records processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;
    assert_streams_and_order(&app.seen);
    assert_no_polling(&env);
    app.scheduler.shutdown();
    app.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stream_split_children_wait_for_their_parent_within_their_stream() {
    let env = Env::start().await;
    env.create_stream("mr-a", 1).await;
    env.create_stream("mr-b", 1).await;
    let tracked = Arc::new(Mutex::new(vec!["mr-a".to_string(), "mr-b".to_string()]));
    let app = start(&env, "mr-app", &tracked, config());
    let mut expected = Vec::new();
    for stream in ["mr-a", "mr-b"] {
        expected.extend(put(&env, stream, 0, 20).await);
    }
    eventually(
        Duration::from_secs(20),
        "first records processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;
    // Both streams' only shard is shardId-000000000000: the keys keep them apart.
    env.kinesis
        .split_shard()
        .stream_name("mr-a")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    for stream in ["mr-a", "mr-b"] {
        expected.extend(put(&env, stream, 1, 20).await);
    }
    eventually(
        Duration::from_secs(30),
        "records of the children processed",
        async || processed_all(&app.seen, &expected),
    )
    .await;
    assert_streams_and_order(&app.seen);

    let table = leases(&env, "mr-app").await;
    let parent = table
        .iter()
        .find(|l| l.key.contains(":mr-a:") && l.shard_id() == "shardId-000000000000")
        .unwrap();
    assert!(parent.is_finished(), "{parent:?}");
    let children: Vec<&Lease> = table
        .iter()
        .filter(|l| l.key.contains(":mr-a:") && l.shard_id() != "shardId-000000000000")
        .collect();
    assert_eq!(children.len(), 2, "{table:?}");
    for child in &children {
        assert_eq!(child.parent_shard_ids, std::slice::from_ref(&parent.key));
        assert!(parent.child_shard_ids.contains(&child.key));
    }
    // In the table relatives are plain shard ids, as the Java KCL writes them.
    let item = env
        .ddb
        .get_item()
        .table_name("mr-app")
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S(children[0].key.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item["parentShardId"],
        aws_sdk_dynamodb::types::AttributeValue::Ss(vec!["shardId-000000000000".into()])
    );
    assert_eq!(
        item["shardId"],
        aws_sdk_dynamodb::types::AttributeValue::S(children[0].shard_id().to_owned())
    );
    // The other stream's shard is untouched.
    let b = table.iter().find(|l| l.key.contains(":mr-b:")).unwrap();
    assert!(!b.is_finished());
    app.scheduler.shutdown();
    app.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stream_keeps_the_leases_of_a_tracked_stream_it_cannot_describe_yet() {
    let env = Env::start().await;
    env.create_stream("mu-x", 1).await;
    let first = put(&env, "mu-x", 0, 10).await;
    let tracked = Arc::new(Mutex::new(vec!["mu-x".to_string()]));
    let app = start(&env, "mu-app", &tracked, config());
    eventually(
        Duration::from_secs(20),
        "first records processed",
        async || processed_all(&app.seen, &first),
    )
    .await;
    app.scheduler.shutdown();
    app.task.await.unwrap().unwrap();

    // Restarted while the stream cannot be described: its leases are not a former stream's.
    env.handle
        .faults()
        .add(
            core_engine::FaultRule::new(
                "DescribeStreamSummary",
                core_engine::Fault::InternalFailure,
            )
            .on_stream("mu-x"),
        )
        .unwrap();
    let app = start(
        &env,
        "mu-app",
        &tracked,
        Config {
            former_stream_lease_retention: Duration::from_millis(100),
            ..config()
        },
    );
    // Several syncs (each waits for the SDK's retries of the failing describe), well past the
    // retention of former streams' leases.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(app.scheduler.streams().is_empty());
    assert_eq!(leases(&env, "mu-app").await.len(), 1);
    env.handle.faults().clear();
    let second = put(&env, "mu-x", 1, 10).await;
    eventually(
        Duration::from_secs(20),
        "later records processed",
        async || processed_all(&app.seen, &second),
    )
    .await;
    // Resumed from the checkpoint, not from the start of the stream.
    let seen = app.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|(_, _, _, d)| first.contains(d)),
        "{seen:?}"
    );
    app.scheduler.shutdown();
    app.task.await.unwrap().unwrap();
}
