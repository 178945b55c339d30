//! Queues. aws-sdk-kinesis has no queue operations yet, so these tests send the requests an
//! SDK would build from the API model: awsJson1.1 bodies, `X-Amz-Target:
//! Kinesis_20131202.<Operation>`, SigV4-signed by the independent `aws-sigv4` crate, with the
//! SDK's user-agent and invocation headers.

mod access;
mod control;
mod dead_letter;
mod delivery;
mod durable;
mod errors;

use std::time::SystemTime;

use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::common::TestEngine;

/// A failed call as the wire shows it.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Sends queue operations to an engine the way an SDK does.
pub struct QueueApi {
    address: String,
    key: (String, String),
}

impl QueueApi {
    pub fn new(endpoint_url: &str) -> Self {
        let address = endpoint_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self {
            address,
            key: ("AKIDTEST".into(), "secret".into()),
        }
    }

    /// The same, signing with another access key.
    pub fn signed_by(mut self, id: &str, secret: &str) -> Self {
        self.key = (id.to_owned(), secret.to_owned());
        self
    }

    pub fn of(engine: &TestEngine) -> Self {
        Self::new(&engine.handle.endpoint_url())
    }

    /// Calls `operation` with `body`; the parsed reply or the error.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value, Failure> {
        let payload = body.to_string().into_bytes();
        let mut request = http::Request::post(format!("http://{}/", self.address))
            .header("host", &self.address)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
            .header("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.94.1")
            .header("x-amz-user-agent", "aws-sdk-rust/1.3.9 api/kinesis/1.130.0")
            .header("amz-sdk-invocation-id", uuid_like(operation, payload.len()))
            .header("amz-sdk-request", "attempt=1; max=3")
            .body(payload)
            .unwrap();
        sign_request(&mut request, &self.key);
        let (parts, payload) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(payload)));
        let socket = TcpStream::connect(&self.address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
            .await
            .unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let reply: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if status == 200 {
            return Ok(reply);
        }
        let code = reply["__type"].as_str().unwrap_or_default();
        Err(Failure {
            status,
            code: code.rsplit('#').next().unwrap_or(code).to_owned(),
            message: reply["message"]
                .as_str()
                .or(reply["Message"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Calls an operation that must succeed.
    pub async fn ok(&self, operation: &str, body: Value) -> Value {
        match self.call(operation, body).await {
            Ok(reply) => reply,
            Err(failure) => panic!("{operation} failed: {failure:?}"),
        }
    }

    /// Creates a queue on `stream_arn` with `attributes` and `start` (a StartingPosition
    /// Type); gives its ARN.
    pub async fn create(
        &self,
        name: &str,
        stream_arn: &str,
        start: &str,
        attributes: Value,
    ) -> String {
        let reply = self
            .ok(
                "CreateQueue",
                json!({
                    "QueueName": name,
                    "StreamConfigurationList": [
                        {"StreamARN": stream_arn, "StartingPosition": {"Type": start}}
                    ],
                    "QueueAttributes": attributes,
                }),
            )
            .await;
        reply["QueueDescription"]["QueueARN"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Receives from a queue (`dead_letter`: its dead-letter records), waiting one second at
    /// most; `extra` adds members to the request.
    pub async fn receive(&self, queue: &str, dead_letter: bool, extra: Value) -> Vec<Value> {
        let mut body = json!({"QueueARN": queue, "WaitTimeSeconds": 1});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let operation = if dead_letter {
            "ReceiveDeadLetterQueueRecords"
        } else {
            "ReceiveQueueRecords"
        };
        self.ok(operation, body).await["QueueRecords"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Runs an entry operation on receipt handles (with `visibility` seconds for the
    /// visibility operations); gives (succeeded handles, failed entries).
    pub async fn settle(
        &self,
        operation: &str,
        queue: &str,
        handles: &[&str],
        visibility: Option<i64>,
    ) -> (Vec<String>, Vec<Value>) {
        let entries: Vec<Value> = handles
            .iter()
            .map(|h| match visibility {
                Some(s) => json!({"ReceiptHandle": h, "VisibilityTimeoutSeconds": s}),
                None => json!({"ReceiptHandle": h}),
            })
            .collect();
        let reply = self
            .ok(operation, json!({"QueueARN": queue, "Entries": entries}))
            .await;
        let successful = reply["Successful"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ReceiptHandle"].as_str().unwrap().to_owned())
            .collect();
        (successful, reply["Failed"].as_array().unwrap().clone())
    }
}

/// Creates an on-demand stream; gives its ARN.
pub async fn on_demand_stream(client: &aws_sdk_kinesis::Client, name: &str) -> String {
    client
        .create_stream()
        .stream_name(name)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn
}

/// A record's data, decoded.
pub fn data(record: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(record["Data"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// A record's receipt handle.
pub fn handle(record: &Value) -> &str {
    record["ReceiptHandle"].as_str().unwrap()
}

/// The data of records, sorted.
pub fn sorted_data(records: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = records.iter().map(data).collect();
    all.sort();
    all
}

fn sign_request(request: &mut http::Request<Vec<u8>>, key: &(String, String)) {
    let identity =
        aws_credential_types::Credentials::new(&key.0, &key.1, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kinesis")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        "POST",
        uri,
        request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(request);
}

/// An invocation id in the SDK's shape (a UUID), distinct per call.
fn uuid_like(operation: &str, len: usize) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        operation.len(),
        len & 0xffff,
        n & 0xfff,
        (n >> 12) & 0xfff,
        n
    )
}
