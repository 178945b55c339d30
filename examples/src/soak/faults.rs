//! Fault rules for the engine's `POST /_shardline/faults` endpoint: the soak's catalogue, drawn
//! from its seeded generator, and a minimal HTTP client for the endpoint.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which services the soak injects faults into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultTargets {
    /// Kinesis calls of the producer and the workers.
    pub kinesis: bool,
    /// DynamoDB calls of the workers on their lease table.
    pub dynamodb: bool,
}

/// A rule to install, in the endpoint's JSON form, with the number of times it may fire.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The JSON body.
    pub body: Value,
    /// Its `times`, so that the soak can count how often it fired.
    pub times: u64,
}

/// Draws one rule: an operation the soak's clients call, a fault, a probability and a bounded
/// number of firings (rules run out, so faults come and go instead of piling up).
pub fn draw(rng: &mut StdRng, targets: FaultTargets, stream: &str, lease_table: &str) -> Rule {
    let kinesis = [
        ("PutRecords", "Throttle"),
        ("PutRecords", "InternalFailure"),
        ("PutRecords", "Latency"),
        ("PutRecords", "DropConnection"),
        ("PutRecords", "DropAfterApply"),
        ("GetRecords", "Throttle"),
        ("GetRecords", "InternalFailure"),
        ("GetRecords", "Latency"),
        ("GetRecords", "DropConnection"),
        ("GetRecords", "ExpireIterator"),
        ("GetShardIterator", "InternalFailure"),
        ("ListShards", "Throttle"),
        // The fleet mixes polling and fan-out workers.
        ("SubscribeToShard", "EndSubscription"),
        ("SubscribeToShard", "InternalFailure"),
        ("SubscribeToShard", "Throttle"),
        ("SubscribeToShard", "DropConnection"),
    ];
    let dynamodb = [
        ("UpdateItem", "Throttle"),
        ("UpdateItem", "InternalFailure"),
        ("UpdateItem", "Latency"),
        ("UpdateItem", "DropConnection"),
        ("UpdateItem", "DropAfterApply"),
        ("Scan", "InternalFailure"),
        ("Scan", "Latency"),
        ("PutItem", "DropAfterApply"),
        ("GetItem", "Throttle"),
    ];
    let mut choices: Vec<(&str, &str, &str)> = Vec::new();
    if targets.kinesis {
        choices.extend(kinesis.iter().map(|(o, f)| ("Kinesis", *o, *f)));
    }
    if targets.dynamodb {
        choices.extend(dynamodb.iter().map(|(o, f)| ("DynamoDB", *o, *f)));
    }
    let (service, operation, fault) = choices[rng.random_range(0..choices.len())];
    let fault_json = if fault == "Latency" {
        json!({ "type": "Latency", "ms": rng.random_range(100..=2500u64) })
    } else {
        json!({ "type": fault })
    };
    let mut probability = [0.05, 0.2, 0.5][rng.random_range(0..3)];
    let mut times = rng.random_range(1..=20u64);
    // A third of the lease-table write faults are storms: every UpdateItem (renewals, takes and
    // checkpoints of every worker) hit for a few seconds, long enough for leases to expire in
    // the eyes of the other workers while their holders still run them.
    let storm = service == "DynamoDB" && operation == "UpdateItem" && rng.random_range(0..3) == 0;
    if storm && fault != "DropAfterApply" {
        probability = [0.5, 0.8, 1.0][rng.random_range(0..3)];
        times = rng.random_range(100..=600u64);
    }
    let body = if service == "Kinesis" {
        json!({
            "operation": operation,
            "stream": stream,
            "fault": fault_json,
            "probability": probability,
            "times": times,
        })
    } else {
        json!({
            "service": "DynamoDB",
            "operation": operation,
            "table": lease_table,
            "fault": fault_json,
            "probability": probability,
            "times": times,
        })
    };
    Rule { body, times }
}

/// Client of the engine's faults endpoint on `127.0.0.1:port`.
#[derive(Clone, Copy, Debug)]
pub struct FaultsEndpoint {
    /// The engine's port.
    pub port: u16,
}

impl FaultsEndpoint {
    /// Installs a rule.
    pub async fn add(&self, rule: &Rule) -> Result<()> {
        self.call("POST", Some(&rule.body)).await.map(|_| ())
    }

    /// The rules in force, in the order they were added.
    pub async fn list(&self) -> Result<Vec<Value>> {
        match self.call("GET", None).await? {
            Value::Array(rules) => Ok(rules),
            other => bail!("GET /_shardline/faults answered {other}"),
        }
    }

    /// Removes every rule.
    pub async fn clear(&self) -> Result<()> {
        self.call("DELETE", None).await.map(|_| ())
    }

    /// One HTTP/1.1 request with `Connection: close`, under a 5 s timeout.
    async fn call(&self, method: &str, body: Option<&Value>) -> Result<Value> {
        tokio::time::timeout(Duration::from_secs(5), self.call_inner(method, body))
            .await
            .context("faults endpoint: no answer within 5 s")?
    }

    async fn call_inner(&self, method: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .context("connecting to the faults endpoint")?;
        let request = format!(
            "{method} /_shardline/faults HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let (status, payload) = parse_response(&response)?;
        if status != 200 {
            bail!(
                "{method} /_shardline/faults answered {status}: {}",
                String::from_utf8_lossy(&payload)
            );
        }
        serde_json::from_slice(&payload).context("faults endpoint answer")
    }
}

/// Status and body of a whole HTTP/1.1 response (plain or chunked).
pub fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an HTTP response without a header end")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP response without a status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without a size line")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size + 2 {
            bail!("a truncated chunk");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// How many times the listed rules fired, given the `times` each was installed with (`initial`,
/// in the same order): a rule's `times` counts down as it fires.
pub fn fired(initial: &[u64], listed: &[Value]) -> u64 {
    initial
        .iter()
        .zip(listed)
        .map(|(initial, rule)| {
            let left = rule
                .get("times")
                .and_then(Value::as_u64)
                .unwrap_or(*initial);
            initial.saturating_sub(left)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]";
        assert_eq!(parse_response(plain).unwrap(), (200, b"[]".to_vec()));
        let chunked =
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2\r\n\"}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (400, b"{\"a\"}".to_vec()));
    }

    #[test]
    fn firings_are_counted_from_the_times_left() {
        let listed = vec![json!({"times": 3}), json!({"times": 0})];
        assert_eq!(fired(&[5, 4], &listed), 2 + 4);
    }

    #[test]
    fn draws_follow_the_seed_and_the_targets() {
        let targets = FaultTargets {
            kinesis: true,
            dynamodb: false,
        };
        let draw_all = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| draw(&mut rng, targets, "s", "t"))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw_all(3), draw_all(3));
        assert!(draw_all(3).iter().all(|r| r.body["stream"] == "s"
            && r.body.get("service").is_none()
            && (1..=20).contains(&r.times)));
    }
}
