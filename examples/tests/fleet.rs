//! The worker-fleet walkthrough (`docs/fleet.md`), automated:
//! three `fleet_worker` processes share a 4-shard stream served by an engine in this process;
//! the one holding the most shards is SIGKILLed, and its shards must be taken by the survivors
//! and checkpointed further.
//!
//! Only deadlines are asserted, never speeds: the run takes a few seconds in a debug build.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::clients;
use examples::fleet::{self, Load, StatusLine};
use kcl::leases::{Checkpoint, Lease, LeaseTable};

const STREAM: &str = "fleet-test";
const APP: &str = "fleet-test-app";
const SHARDS: usize = 4;
const FAILOVER_MS: u64 = 1500;
/// Generous: the takeover itself needs failover time plus a renewal interval (about 2 s).
const DEADLINE: Duration = Duration::from_secs(30);

/// Lines a child printed, filled by a reader thread.
type Lines = Arc<Mutex<Vec<String>>>;

/// One `fleet_worker` process.
struct Worker {
    id: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

impl Worker {
    fn start(endpoint: &str, id: &str) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleet_worker"))
            .args(["--endpoint", endpoint, "--stream", STREAM, "--app", APP])
            .args(["--worker-id", id, "--failover-ms", &FAILOVER_MS.to_string()])
            .args(["--status-ms", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fleet_worker starts");
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Worker {
            id: id.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    /// The shards the worker said it holds in its last status line.
    fn reported(&self) -> Option<BTreeSet<String>> {
        let lines = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .rev()
            .find_map(|line| StatusLine::parse(line))
            .map(|s| s.shards)
    }

    /// Records processed, from the last status line.
    fn processed(&self) -> u64 {
        let lines = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .rev()
            .find_map(|line| StatusLine::parse(line))
            .map_or(0, |s| s.processed)
    }

    fn printed(&self, needle: &str) -> bool {
        let lines = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().any(|line| line.contains(needle))
    }
}

/// Reads `pipe` line by line into a shared list, on its own thread (std pipes block).
fn collect(pipe: impl Read + Send + 'static) -> Lines {
    let lines = Lines::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    lines
}

/// The worker processes; dropping it kills those still running, so that no worker outlives a
/// failed test, and shows what they printed when the test failed.
struct Fleet(Vec<Worker>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
        if std::thread::panicking() {
            // Give the reader threads a moment to drain the pipes of the dead processes.
            std::thread::sleep(Duration::from_millis(200));
            for worker in &self.0 {
                for (name, lines) in [("stdout", &worker.stdout), ("stderr", &worker.stderr)] {
                    let lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                    eprintln!("---- {} {name} ({} lines)", worker.id, lines.len());
                    for line in lines.iter().rev().take(60).rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
    }
}

impl Fleet {
    fn get(&self, id: &str) -> &Worker {
        self.0.iter().find(|w| w.id == id).expect("known worker")
    }

    fn get_mut(&mut self, id: &str) -> &mut Worker {
        self.0
            .iter_mut()
            .find(|w| w.id == id)
            .expect("known worker")
    }
}

/// Owner of each lease (finished leases are left out: there are none without a reshard).
fn owners(leases: &[Lease]) -> BTreeMap<String, Option<String>> {
    leases
        .iter()
        .filter(|l| !l.is_finished())
        .map(|l| (l.key.clone(), l.owner.clone()))
        .collect()
}

/// Shards per owner.
fn by_owner(leases: &[Lease]) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (shard, owner) in owners(leases) {
        if let Some(owner) = owner {
            map.entry(owner).or_default().insert(shard);
        }
    }
    map
}

/// Whether `after` is a later position in the shard than `before`.
fn advanced(before: &Checkpoint, after: &Checkpoint) -> bool {
    match (before.sequence(), after.sequence()) {
        (Some(b), Some(a)) => a > b,
        // From a start sentinel to a record.
        (None, Some(_)) => *before != Checkpoint::ShardEnd,
        (_, None) => false,
    }
}

/// Polls `check` every 200 ms until it gives a value or `DEADLINE` passes; panics with `what`
/// and the last lease table then.
async fn until<T>(
    table: &LeaseTable,
    what: &str,
    mut check: impl FnMut(&[Lease]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut last = Vec::new();
    loop {
        if let Ok(leases) = table.list().await {
            if let Some(value) = check(&leases) {
                return value;
            }
            last = leases;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}; lease table:\n{}",
            fleet::lease_table_view(&last)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_shards_move_to_the_survivors_and_keep_being_checkpointed() {
    let started = Instant::now();
    let engine = core_engine::Engine::builder()
        .build()
        .expect("engine config")
        .start()
        .await
        .expect("engine starts");
    let endpoint = engine.endpoint_url();
    let kinesis = clients::kinesis(&endpoint);
    let table = LeaseTable::new(clients::dynamodb(&endpoint), APP);
    let (created, open) = fleet::ensure_stream(&kinesis, STREAM, SHARDS as i32)
        .await
        .expect("stream");
    assert!(created);
    assert_eq!(open, SHARDS as i32);

    let producer = kpl::Producer::new(kinesis.clone(), STREAM, kpl::Config::default())
        .await
        .expect("producer starts");
    let producer = Arc::new(producer);
    let load = Arc::new(Load::default());
    let producing = tokio::spawn({
        let (producer, load) = (producer.clone(), load.clone());
        async move { fleet::produce(&producer, 200, 500, load).await }
    });

    let ids = ["w1", "w2", "w3"];
    let mut fleet = Fleet(ids.iter().map(|id| Worker::start(&endpoint, id)).collect());

    // Settled: every lease held, each worker holding some, every shard checkpointed at a
    // record, and each worker's own report agrees with the table (a stolen lease shows in the table before its
    // old owner notices).
    let settled = until(
        &table,
        "all leases held and reported, every shard checkpointed",
        |leases| {
            let owners = owners(leases);
            let all_held = owners.len() == SHARDS
                && owners
                    .values()
                    .all(|o| o.as_deref().is_some_and(|o| ids.contains(&o)));
            let all_checkpointed = leases.iter().all(|l| l.checkpoint.sequence().is_some());
            let table_view = by_owner(leases);
            let agree = ids.iter().all(|id| {
                fleet.get(id).reported().unwrap_or_default()
                    == table_view.get(*id).cloned().unwrap_or_default()
            });
            // Balanced: 4 leases over 3 workers is 2, 1, 1.
            let balanced = table_view.len() == ids.len();
            (all_held && all_checkpointed && agree && balanced).then_some(table_view)
        },
    )
    .await;
    let settled_at = started.elapsed();

    let (victim, victim_shards) = settled
        .iter()
        .max_by_key(|(_, shards)| shards.len())
        .map(|(owner, shards)| (owner.clone(), shards.clone()))
        .expect("an owner");
    let survivors: Vec<&str> = ids.iter().copied().filter(|id| *id != victim).collect();
    let before: BTreeMap<String, Checkpoint> = table
        .list()
        .await
        .expect("lease table")
        .into_iter()
        .filter(|l| victim_shards.contains(&l.key))
        .map(|l| (l.key, l.checkpoint))
        .collect();
    let processed_before: BTreeMap<&str, u64> = survivors
        .iter()
        .map(|id| (*id, fleet.get(id).processed()))
        .collect();

    // SIGKILL: no final checkpoint, no lease handed back; only expiry frees its shards.
    let killed_at = Instant::now();
    let status = {
        let worker = fleet.get_mut(&victim);
        worker.child.kill().expect("kill the victim");
        worker.child.wait().expect("victim reaped")
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{victim} died of SIGKILL");
    }
    #[cfg(not(unix))]
    assert!(!status.success());

    // Every shard of the victim owned by a survivor, in the table and in the survivors' reports.
    until(
        &table,
        "the victim's shards taken by the survivors",
        |leases| {
            let owners = owners(leases);
            let in_table = victim_shards.iter().all(|shard| {
                owners
                    .get(shard)
                    .and_then(|o| o.as_deref())
                    .is_some_and(|o| survivors.contains(&o))
            });
            let reported: BTreeSet<String> = survivors
                .iter()
                .flat_map(|id| fleet.get(id).reported().unwrap_or_default())
                .collect();
            (in_table && victim_shards.is_subset(&reported)).then_some(())
        },
    )
    .await;
    let taken_after = killed_at.elapsed();

    // And processed further: each of its shards checkpointed beyond where the victim left it,
    // by a survivor (checkpoints are fenced, so the dead owner cannot have written them).
    until(
        &table,
        "the victim's shards checkpointed further",
        |leases| {
            leases
                .iter()
                .filter(|l| victim_shards.contains(&l.key))
                .all(|l| {
                    l.owner.as_deref().is_some_and(|o| survivors.contains(&o))
                        && advanced(&before[&l.key], &l.checkpoint)
                })
                .then_some(())
        },
    )
    .await;
    let checkpointed_after = killed_at.elapsed();
    for id in &survivors {
        assert!(
            fleet.get(id).processed() > processed_before[id],
            "{id} kept processing"
        );
    }

    // A graceful stop (SIGTERM) of a survivor: final checkpoints, leases handed back, exit 0.
    #[cfg(unix)]
    {
        let leaving = survivors[0];
        let pid = fleet.get(leaving).child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill(1) runs");
        assert!(sent.success());
        let deadline = Instant::now() + DEADLINE;
        let exit = loop {
            if let Some(exit) = fleet.get_mut(leaving).child.try_wait().expect("try_wait") {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "{leaving} did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(exit.success(), "{leaving} exited with {exit}");
        // The reader thread may still hold the last lines for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fleet.get(leaving).printed("stopped") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let last = fleet
            .get(leaving)
            .stdout
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let stopped = last
            .iter()
            .find(|line| line.ends_with(" stopped"))
            .and_then(|line| StatusLine::parse(line));
        assert!(
            stopped.is_some_and(|s| s.shards.is_empty()),
            "{leaving} printed a final status holding nothing"
        );
        // Handed back, not left to expire: no lease names it once it has exited.
        let leases = table.list().await.expect("lease table");
        assert!(
            leases.iter().all(|l| l.owner.as_deref() != Some(leaving)),
            "{leaving} gave its leases up:\n{}",
            fleet::lease_table_view(&leases)
        );
        // The last worker takes the unowned leases at once rather than after expiry, but only
        // a deadline is asserted.
        let last = survivors[1];
        until(&table, "the last worker holding every shard", |leases| {
            let all: BTreeSet<String> = owners(leases).into_keys().collect();
            (fleet.get(last).reported() == Some(all.clone())
                && by_owner(leases).get(last) == Some(&all))
            .then_some(())
        })
        .await;
    }

    load.stop.store(true, Ordering::SeqCst);
    producing.await.expect("producer task");
    assert_eq!(load.failed.load(Ordering::Relaxed), 0, "producer failures");
    assert!(load.acked.load(Ordering::Relaxed) > 0);
    drop(fleet);
    engine.shutdown().await;
    eprintln!(
        "settled after {:.1}s; killed {victim} holding {victim_shards:?}; taken over after {:.1}s, \
         checkpointed further after {:.1}s; whole test {:.1}s",
        settled_at.as_secs_f64(),
        taken_after.as_secs_f64(),
        checkpointed_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
