//! SigV4 verification, access rules and the admin key: the real SDK clients (right secret,
//! wrong secret, session tokens), requests signed by the independent `aws-sigv4` crate sent as
//! raw HTTP (header and query-string signing, JSON and CBOR), and the `serve` flags.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamDescription};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use core_engine::auth::{AccessKey, Credentials, Rule};
use core_engine::{Engine, EngineBuilder, EngineHandle, ManualClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::code_of;

const REGION: &str = "us-east-1";
const ADMIN: (&str, &str) = ("AKIDADMIN", "admin-secret");
const PLAIN: (&str, &str) = ("AKIDPLAIN", "plain-secret");
const TOKEN_KEY: (&str, &str, &str) = ("AKIDSESSION", "session-secret", "the-session-token");
const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const BAD_TOKEN: &str = "The security token included in the request is invalid.";

fn credentials() -> Credentials {
    Credentials::single(ADMIN.0, ADMIN.1)
        .key(AccessKey::new(PLAIN.0, PLAIN.1))
        .key(AccessKey::new(TOKEN_KEY.0, TOKEN_KEY.1).session_token(TOKEN_KEY.2))
}

async fn start(builder: EngineBuilder) -> EngineHandle {
    builder.build().unwrap().start().await.unwrap()
}

async fn verifying() -> EngineHandle {
    start(Engine::builder().credentials(credentials())).await
}

fn sdk_credentials(
    id: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(id, secret, token.map(str::to_owned), None, "test")
}

fn kinesis(
    engine: &EngineHandle,
    key: (&str, &str),
    token: Option<&str>,
) -> aws_sdk_kinesis::Client {
    kinesis_in(engine, key, token, REGION)
}

fn kinesis_in(
    engine: &EngineHandle,
    key: (&str, &str),
    token: Option<&str>,
    region: &'static str,
) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(sdk_credentials(key.0, key.1, token))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

fn dynamodb(engine: &EngineHandle, key: (&str, &str)) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(sdk_credentials(key.0, key.1, None))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// How `aws-sigv4` should sign a raw request.
struct Signer<'a> {
    key: (&'a str, &'a str),
    token: Option<&'a str>,
    service: &'a str,
    time: SystemTime,
    presign: Option<Duration>,
    content_sha256: bool,
    unsigned_payload: bool,
}

impl<'a> Signer<'a> {
    fn new(key: (&'a str, &'a str), service: &'a str) -> Self {
        Self {
            key,
            token: None,
            service,
            time: SystemTime::now(),
            presign: None,
            content_sha256: false,
            unsigned_payload: false,
        }
    }
}

/// A raw HTTP/1.1 answer.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends a request, signed by `aws-sigv4` when `signer` is given, over a fresh connection.
async fn send(
    engine: &EngineHandle,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    signer: Option<Signer<'_>>,
) -> Answer {
    let host = engine.local_addr().to_string();
    let uri = format!("http://{host}{path}");
    let mut request = http::Request::builder().method("POST").uri(&uri);
    request = request.header("host", &host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(body.to_vec()).unwrap();
    if let Some(signer) = signer {
        let mut settings = SigningSettings::default();
        if let Some(expires) = signer.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        if signer.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let identity = sdk_credentials(signer.key.0, signer.key.1, signer.token).into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(signer.service)
            .time(signer.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            uri.clone(),
            request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
            if signer.unsigned_payload {
                SignableBody::UnsignedPayload
            } else {
                SignableBody::Bytes(body)
            },
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
    }
    send_raw(engine, &request).await
}

async fn send_raw(engine: &EngineHandle, request: &http::Request<Vec<u8>>) -> Answer {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method());
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body().len()
    ));
    let mut socket = TcpStream::connect(engine.local_addr()).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(request.body()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    Answer {
        status: head[9..12].parse().unwrap(),
        head,
        body: response[split + 4..].to_vec(),
    }
}

const LIST_STREAMS: [(&str, &str); 2] = [
    ("content-type", "application/x-amz-json-1.1"),
    ("x-amz-target", "Kinesis_20131202.ListStreams"),
];

fn sign_with(request: &mut http::Request<Vec<u8>>, signer: Signer<'_>) {
    let mut settings = SigningSettings::default();
    if signer.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = sdk_credentials(signer.key.0, signer.key.1, signer.token).into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(signer.service)
        .time(signer.time)
        .settings(settings)
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

/// `YYYYMMDDTHHMMSSZ` for `time`, formatted by the SDK's own time library.
fn amz_date_of(time: SystemTime) -> String {
    let formatted = aws_sdk_kinesis::primitives::DateTime::from(time)
        .fmt(aws_sdk_kinesis::primitives::DateTimeFormat::DateTime)
        .unwrap();
    // 2025-01-01T00:00:00Z (maybe with fractional seconds) -> 20250101T000000Z
    let digits: String = formatted[..19]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{}T{}Z", &digits[..8], &digits[8..14])
}

fn epoch_ms(time: SystemTime) -> i64 {
    i64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

mod admin;
mod rules;
mod signatures;
