//! What the tests share: an engine in this process, a counting processor, a plain HTTP GET, the Prometheus text format
//! read into samples, and running the example binaries in a clean AWS environment.

#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kcl::{Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An engine in this process, started from `builder`.
pub async fn engine(builder: core_engine::EngineBuilder) -> core_engine::EngineHandle {
    builder
        .build()
        .expect("engine config")
        .start()
        .await
        .expect("engine starts")
}

/// Puts `count` records (`customer-{i}`: `order {i}`) through `producer` and waits until every
/// one is acknowledged.
pub async fn put_orders(producer: &kpl::Producer, count: usize) {
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = kpl::Record::new(format!("customer-{i}"), format!("order {i}"));
        deliveries.push(producer.put(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
}

/// Counts records and checkpoints every batch.
#[derive(Debug)]
pub struct Counting(pub Arc<AtomicU64>);

impl RecordProcessor for Counting {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.0
            .fetch_add(input.records.len() as u64, Ordering::SeqCst);
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shard_ended(&mut self, c: &mut Checkpointer) -> Result<(), ProcessorError> {
        Ok(c.checkpoint().await?)
    }
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a header block");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of `name` over the samples whose labels include `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    matching(samples, name, with).map(|s| s.value).sum()
}

/// The samples of `name` whose labels include `with`.
pub fn matching<'a>(
    samples: &'a [Sample],
    name: &'a str,
    with: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    samples.iter().filter(move |s| {
        s.name == name
            && with
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// `bin args` with only `env` in its environment, and `HOME=home` (so no profile or credentials
/// of the machine's are read) and instance metadata off: its AWS configuration is exactly what
/// the test gives it.
pub fn aws_command(bin: &str, args: &[&str], env: &[(&str, &str)], home: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// How a run of a binary ended, and what it printed.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `command` (with piped stdout and stderr) to its end; kills it and panics with its output
/// if it runs longer than `limit`.
pub fn run_to_end(mut command: Command, limit: Duration) -> Finished {
    let mut child = command.spawn().expect("the binary starts");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the binary") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) => Finished {
            status,
            stdout,
            stderr,
        },
        None => panic!("still running after {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}
