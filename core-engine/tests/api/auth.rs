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

#[tokio::test]
async fn verification_is_off_by_default() {
    let engine = start(Engine::builder()).await;
    let client = kinesis(&engine, ("anything", "wrong"), None);
    client.list_streams().send().await.unwrap();
    let answer = send(&engine, "/", &LIST_STREAMS, b"{}", None).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json()["__type"],
        "MissingAuthenticationTokenException"
    );
}

#[tokio::test]
async fn the_sdk_is_accepted_with_the_right_secret_and_refused_with_a_wrong_one() {
    let engine = verifying().await;
    let admin = kinesis(&engine, ADMIN, None);
    admin
        .create_stream()
        .stream_name("signed")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let plain = kinesis(&engine, PLAIN, None);
    plain
        .put_record()
        .stream_name("signed")
        .partition_key("k")
        .data(Blob::new("v"))
        .send()
        .await
        .unwrap();

    let wrong = kinesis(&engine, (PLAIN.0, "not-the-secret"), None);
    let (code, message) = code_of(wrong.list_streams().send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidSignatureException", BAD_SIGNATURE)
    );
    let unknown = kinesis(&engine, ("AKIDUNKNOWN", PLAIN.1), None);
    let (code, message) = code_of(unknown.list_streams().send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("UnrecognizedClientException", BAD_TOKEN)
    );
    let (code, message) = code_of(
        kinesis_in(&engine, PLAIN, None, "eu-west-1")
            .list_streams()
            .send()
            .await,
    );
    assert_eq!(code, "InvalidSignatureException");
    assert_eq!(
        message,
        "Credential should be scoped to a valid region, not 'eu-west-1'."
    );

    // DynamoDB checks the same keys, with its own error shape.
    let tables = dynamodb(&engine, PLAIN);
    tables.list_tables().send().await.unwrap();
    let (code, message) = code_of(
        dynamodb(&engine, (PLAIN.0, "nope"))
            .list_tables()
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidSignatureException", BAD_SIGNATURE)
    );
    let (code, _) = code_of(
        dynamodb(&engine, ("AKIDUNKNOWN", "x"))
            .list_tables()
            .send()
            .await,
    );
    assert_eq!(code, "UnrecognizedClientException");
}

#[tokio::test]
async fn a_key_with_a_session_token_needs_exactly_that_token() {
    let engine = verifying().await;
    let key = (TOKEN_KEY.0, TOKEN_KEY.1);
    kinesis(&engine, key, Some(TOKEN_KEY.2))
        .list_streams()
        .send()
        .await
        .unwrap();
    for token in [None, Some("another-token")] {
        let (code, message) = code_of(kinesis(&engine, key, token).list_streams().send().await);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("UnrecognizedClientException", BAD_TOKEN),
            "{token:?}"
        );
    }
    // A key without a token refuses one.
    let (code, _) = code_of(
        kinesis(&engine, PLAIN, Some("stray"))
            .list_streams()
            .send()
            .await,
    );
    assert_eq!(code, "UnrecognizedClientException");
    // Presigned, the token travels in the query string.
    let mut signer = Signer::new(key, "kinesis");
    signer.token = Some(TOKEN_KEY.2);
    signer.presign = Some(Duration::from_secs(60));
    let answer = send(&engine, "/", &LIST_STREAMS, b"{}", Some(signer)).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[tokio::test]
async fn each_failure_gets_its_aws_error_over_raw_http() {
    let engine = verifying().await;
    let check = |answer: Answer, code: &str, message: &str| {
        let body = answer.json();
        assert_eq!(body["__type"], code, "{body}");
        assert_eq!(answer.header("x-amzn-ErrorType"), Some(code));
        let text = body["message"].as_str().unwrap();
        assert!(
            text.starts_with(message),
            "{text:?} should start with {message:?}"
        );
        answer.status
    };
    // Correctly signed by aws-sigv4: accepted, with and without x-amz-content-sha256.
    let ok = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(Signer::new(PLAIN, "kinesis")),
    )
    .await;
    assert_eq!(ok.status, 200);
    let mut hashed = Signer::new(PLAIN, "kinesis");
    hashed.content_sha256 = true;
    let ok = send(&engine, "/", &LIST_STREAMS, b"{}", Some(hashed)).await;
    assert_eq!(ok.status, 200);
    // x-amz-content-sha256: UNSIGNED-PAYLOAD leaves the body out of the signature.
    let mut unsigned = Signer::new(PLAIN, "kinesis");
    unsigned.content_sha256 = true;
    unsigned.unsigned_payload = true;
    let ok = send(&engine, "/", &LIST_STREAMS, b"{}", Some(unsigned)).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));

    let none = send(&engine, "/", &LIST_STREAMS, b"{}", None).await;
    assert_eq!(
        check(
            none,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token"
        ),
        403
    );

    let garbage = [
        LIST_STREAMS[0],
        LIST_STREAMS[1],
        ("authorization", "garbage"),
    ];
    let answer = send(&engine, "/", &garbage, b"{}", None).await;
    assert_eq!(
        check(
            answer,
            "IncompleteSignatureException",
            "Unsupported AWS 'algorithm': 'garbage'"
        ),
        400
    );

    let partial = [
        LIST_STREAMS[0],
        LIST_STREAMS[1],
        ("x-amz-date", "20250101T000000Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDPLAIN/20250101/us-east-1/kinesis/aws4_request",
        ),
    ];
    let answer = send(&engine, "/", &partial, b"{}", None).await;
    check(
        answer,
        "IncompleteSignatureException",
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
    );

    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(Signer::new((PLAIN.0, "wrong"), "kinesis")),
    )
    .await;
    assert_eq!(
        check(answer, "InvalidSignatureException", BAD_SIGNATURE),
        400
    );

    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(Signer::new(PLAIN, "dynamodb")),
    )
    .await;
    check(
        answer,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'kinesis'.",
    );

    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(Signer::new(("AKIDWHO", "x"), "kinesis")),
    )
    .await;
    check(answer, "UnrecognizedClientException", BAD_TOKEN);

    // Scope and header checks come before the signature is even computed.
    let today = SystemTime::now();
    let stamp = amz_date_of(today);
    let date = &stamp[..8];
    let scope_cases = [
        (
            "AKIDPLAIN/19990101/us-east-1/kinesis/aws4_request".to_owned(),
            "host;x-amz-date",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '19990101'",
        ),
        (
            format!("AKIDPLAIN/{date}/us-east-1/kinesis/aws5_request"),
            "host;x-amz-date",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
        ),
        (
            format!("AKIDPLAIN/{date}/us-east-1/kinesis/aws4_request"),
            "x-amz-date",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ];
    for (credential, signed_headers, message) in scope_cases {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed_headers}, Signature=00"
        );
        let headers = [
            LIST_STREAMS[0],
            LIST_STREAMS[1],
            ("x-amz-date", stamp.as_str()),
            ("authorization", authorization.as_str()),
        ];
        let answer = send(&engine, "/", &headers, b"{}", None).await;
        check(answer, "InvalidSignatureException", message);
    }
    let bad_credential = [
        LIST_STREAMS[0],
        LIST_STREAMS[1],
        ("x-amz-date", stamp.as_str()),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDPLAIN/us-east-1, SignedHeaders=host, Signature=00",
        ),
    ];
    let answer = send(&engine, "/", &bad_credential, b"{}", None).await;
    check(
        answer,
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements",
    );

    // A body changed after signing no longer matches.
    let signed_for = b"{}".as_slice();
    let mut tampered = Signer::new(PLAIN, "kinesis");
    tampered.content_sha256 = true;
    let host = engine.local_addr().to_string();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{host}/"))
        .header("host", &host)
        .header(LIST_STREAMS[0].0, LIST_STREAMS[0].1)
        .header(LIST_STREAMS[1].0, LIST_STREAMS[1].1)
        .body(signed_for.to_vec())
        .unwrap();
    sign_with(&mut request, tampered);
    *request.body_mut() = br#"{"Limit":1}"#.to_vec();
    check(
        send_raw(&engine, &request).await,
        "InvalidSignatureException",
        BAD_SIGNATURE,
    );

    // DynamoDB answers in its own format.
    let ddb = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.ListTables"),
    ];
    let answer = send(&engine, "/", &ddb, b"{}", None).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
            "message": "Request is missing Authentication Token"
        })
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    let answer = send(
        &engine,
        "/",
        &ddb,
        b"{}",
        Some(Signer::new((PLAIN.0, "wrong"), "dynamodb")),
    )
    .await;
    assert_eq!(
        answer.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let answer = send(
        &engine,
        "/",
        &ddb,
        b"{}",
        Some(Signer::new(PLAIN, "dynamodb")),
    )
    .await;
    assert_eq!(answer.status, 200);
}

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

#[tokio::test]
async fn requests_are_refused_outside_fifteen_minutes_of_the_engines_clock() {
    let now = SystemTime::now();
    let clock = Arc::new(ManualClock::new(epoch_ms(now)));
    let engine = start(
        Engine::builder()
            .credentials(credentials())
            .clock(clock.clone()),
    )
    .await;
    let client = kinesis(&engine, PLAIN, None);
    client.list_streams().send().await.unwrap();
    // The engine's time is 16 minutes past the client's: the signature has expired.
    clock.set(epoch_ms(now + Duration::from_secs(16 * 60)));
    let (code, message) = code_of(client.list_streams().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.ends_with(" - 15 min.)"), "{message}");
    // 14 minutes is within the window.
    clock.set(epoch_ms(now + Duration::from_secs(14 * 60)));
    client.list_streams().send().await.unwrap();
    // The client is 16 minutes ahead of the engine.
    clock.set(epoch_ms(now - Duration::from_secs(16 * 60)));
    let (code, message) = code_of(client.list_streams().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(
        message.starts_with("Signature not yet current: "),
        "{message}"
    );
}

#[tokio::test]
async fn presigned_requests_are_accepted_until_they_expire() {
    let now = SystemTime::now();
    let clock = Arc::new(ManualClock::new(epoch_ms(now)));
    let engine = start(
        Engine::builder()
            .credentials(credentials())
            .clock(clock.clone()),
    )
    .await;
    let presigned = |key, secs| {
        let mut signer = Signer::new(key, "kinesis");
        signer.time = now;
        signer.presign = Some(Duration::from_secs(secs));
        signer
    };
    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(presigned(PLAIN, 300)),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(presigned((PLAIN.0, "x"), 300)),
    )
    .await;
    assert_eq!(answer.json()["__type"], "InvalidSignatureException");
    assert_eq!(answer.json()["message"], BAD_SIGNATURE);
    // Past X-Amz-Expires, though well within 15 minutes.
    clock.set(epoch_ms(now + Duration::from_secs(301)));
    let answer = send(
        &engine,
        "/",
        &LIST_STREAMS,
        b"{}",
        Some(presigned(PLAIN, 300)),
    )
    .await;
    assert_eq!(answer.json()["__type"], "InvalidSignatureException");
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Signature expired: "), "{message}");
    // A query string with some of the parameters only.
    let path = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDPLAIN%2F20250101%2Fus-east-1%2Fkinesis%2Faws4_request";
    let answer = send(&engine, path, &LIST_STREAMS, b"{}", None).await;
    assert_eq!(answer.json()["__type"], "IncompleteSignatureException");
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature")
    );
}

#[tokio::test]
async fn cbor_clients_get_cbor_errors() {
    let engine = verifying().await;
    let cbor = [
        ("content-type", "application/x-amz-cbor-1.1"),
        ("x-amz-target", "Kinesis_20131202.ListStreams"),
    ];
    // An empty CBOR map.
    let body = [0xa0u8];
    let answer = send(
        &engine,
        "/",
        &cbor,
        &body,
        Some(Signer::new(PLAIN, "kinesis")),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-amz-cbor-1.1")
    );
    let answer = send(
        &engine,
        "/",
        &cbor,
        &body,
        Some(Signer::new((PLAIN.0, "wrong"), "kinesis")),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-amz-cbor-1.1")
    );
    assert_eq!(
        answer.header("x-amzn-ErrorType"),
        Some("InvalidSignatureException")
    );
    // {"__type": "InvalidSignatureException", "message": ...} as a CBOR map of two text pairs.
    assert_eq!(answer.body[0], 0xa2);
    let text = String::from_utf8_lossy(&answer.body);
    assert!(text.contains("__type") && text.contains("InvalidSignatureException"));
    assert!(text.contains("The request signature we calculated"));
    let answer = send(&engine, "/", &cbor, &body, None).await;
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-amz-cbor-1.1")
    );
    assert!(String::from_utf8_lossy(&answer.body).contains("MissingAuthenticationTokenException"));
}

const PRODUCER: (&str, &str) = ("AKIDPRODUCER", "producer-secret");
const CONSUMER: (&str, &str) = ("AKIDCONSUMER", "consumer-secret");

/// A producer that may write to and describe `orders*` streams, a consumer that may read
/// anything and use lease tables, and an admin.
fn roles() -> Credentials {
    let orders = "arn:aws:kinesis:*:*:stream/orders*";
    Credentials::single(ADMIN.0, ADMIN.1)
        .key(
            AccessKey::new(PRODUCER.0, PRODUCER.1)
                .user("producer")
                .rule(Rule::allow(
                    [
                        "kinesis:PutRecord",
                        "kinesis:PutRecords",
                        "kinesis:Describe*",
                        "kinesis:ListShards",
                    ],
                    [orders],
                )),
        )
        .key(
            AccessKey::new(CONSUMER.0, CONSUMER.1)
                .user("consumer")
                .rule(Rule::allow(["kinesis:*"], ["*"]))
                .rule(Rule::allow(
                    ["dynamodb:*"],
                    ["arn:aws:dynamodb:*:*:table/leases*"],
                ))
                .rule(Rule::deny(["kinesis:PutRecord*"], ["*"])),
        )
}

#[tokio::test]
async fn access_rules_keep_producers_from_reading_and_consumers_from_writing() {
    let engine = start(Engine::builder().credentials(roles())).await;
    let admin = kinesis(&engine, ADMIN, None);
    for stream in ["orders", "audit"] {
        admin
            .create_stream()
            .stream_name(stream)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    let producer = kinesis(&engine, PRODUCER, None);
    let consumer = kinesis(&engine, CONSUMER, None);
    let put = producer
        .put_record()
        .stream_name("orders")
        .partition_key("k")
        .data(Blob::new("order-1"))
        .send()
        .await
        .unwrap();
    let description: StreamDescription = producer
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let stream_arn = description.stream_arn;

    // The producer cannot read.
    let (code, message) = code_of(
        producer
            .get_shard_iterator()
            .stream_name("orders")
            .shard_id(&put.shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::000000000000:user/producer is not authorized to perform: \
             kinesis:GetShardIterator on resource: {stream_arn} because no identity-based policy \
             allows the kinesis:GetShardIterator action"
        )
    );
    // Nor write to a stream outside its pattern.
    let (code, message) = code_of(
        producer
            .put_record()
            .stream_name("audit")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("on resource: arn:aws:kinesis:us-east-1:000000000000:stream/audit"),
        "{message}"
    );

    // The consumer reads what the producer wrote...
    let iterator = consumer
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(&put.shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let records = consumer
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data.as_ref(), b"order-1");
    // ...and the producer may not, even with an iterator in hand (the stream comes from it).
    let (code, message) = code_of(
        producer
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains(&format!("kinesis:GetRecords on resource: {stream_arn}")),
        "{message}"
    );

    // The consumer cannot write: an explicit deny.
    let put_one = code_of(
        consumer
            .put_record()
            .stream_name("orders")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    let put_many = code_of(
        consumer
            .put_records()
            .stream_name("orders")
            .records(
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .data(Blob::new("x"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    for (code, message) in [put_one, put_many] {
        assert_eq!(code, "AccessDeniedException");
        assert!(
            message.ends_with("with an explicit deny in an identity-based policy"),
            "{message}"
        );
    }

    // Enhanced fan-out: the consumer subscribes, the producer may not.
    let consumer_arn = admin
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("app")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let (code, message) = code_of(
        producer
            .subscribe_to_shard()
            .consumer_arn(&consumer_arn)
            .shard_id(&put.shard_id)
            .starting_position(
                aws_sdk_kinesis::types::StartingPosition::builder()
                    .r#type(ShardIteratorType::TrimHorizon)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains(&format!(
            "kinesis:SubscribeToShard on resource: {consumer_arn}"
        )),
        "{message}"
    );

    // DynamoDB: the consumer may use its lease tables and nothing else.
    let tables = dynamodb(&engine, CONSUMER);
    let create = |name: &str| {
        tables
            .create_table()
            .table_name(name)
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("leaseKey")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("leaseKey")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .send()
    };
    create("leases-app").await.unwrap();
    let (code, message) = code_of(create("billing").await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        "User: arn:aws:iam::000000000000:user/consumer is not authorized to perform: \
         dynamodb:CreateTable on resource: arn:aws:dynamodb:us-east-1:000000000000:table/billing \
         because no identity-based policy allows the dynamodb:CreateTable action"
    );
    let (code, _) = code_of(dynamodb(&engine, PRODUCER).list_tables().send().await);
    assert_eq!(code, "AccessDeniedException");
}

const FAULTS: &str = "/_shardline/faults";

async fn admin_get(engine: &EngineHandle, key: Option<(&str, &str)>) -> Answer {
    let host = engine.local_addr().to_string();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(format!("http://{host}{FAULTS}"))
        .header("host", &host)
        .body(Vec::new())
        .unwrap();
    if let Some((id, secret)) = key {
        core_engine::auth::sign_request(
            &mut request,
            id,
            secret,
            None,
            REGION,
            core_engine::auth::ADMIN_SERVICE,
            SystemTime::now(),
        )
        .unwrap();
    }
    send_raw(engine, &request).await
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_key_and_can_be_switched_off() {
    let engine = verifying().await;
    let answer = admin_get(&engine, Some(ADMIN)).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json(), serde_json::json!([]));
    let answer = admin_get(&engine, None).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json()["__type"],
        "MissingAuthenticationTokenException"
    );
    let answer = admin_get(&engine, Some(PLAIN)).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["__type"], "AccessDeniedException");
    let answer = admin_get(&engine, Some((ADMIN.0, "wrong"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["__type"], "InvalidSignatureException");
    // Signed by aws-sigv4 for the service `shardline`: accepted; for `kinesis`: refused.
    let json = [("content-type", "application/json")];
    let rule = br#"{"operation":"PutRecord","fault":{"type":"Throttle"}}"#;
    let answer = send(
        &engine,
        FAULTS,
        &json,
        rule,
        Some(Signer::new(ADMIN, "shardline")),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(engine.faults().rules().len(), 1);
    let answer = send(
        &engine,
        FAULTS,
        &json,
        rule,
        Some(Signer::new(ADMIN, "kinesis")),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(engine.faults().rules().len(), 1);

    let off = start(Engine::builder().admin_endpoints(false)).await;
    let answer = admin_get(&off, None).await;
    assert_eq!(answer.status, 404);
    let off = start(
        Engine::builder()
            .credentials(credentials())
            .admin_endpoints(false),
    )
    .await;
    assert_eq!(admin_get(&off, Some(ADMIN)).await.status, 404);
}

#[test]
fn bad_credentials_stop_the_build() {
    let build = |c: Credentials| Engine::builder().credentials(c).build().map(|_| ());
    assert!(build(Credentials::new()).is_err());
    assert!(build(Credentials::single("A", "")).is_err());
    assert!(build(Credentials::single("A", "s").key(AccessKey::new("A", "t"))).is_err());
    assert!(
        build(
            Credentials::single("A", "s")
                .key(AccessKey::new("B", "t").rule(Rule::allow(["PutRecord"], ["*"])))
        )
        .is_err()
    );
}

#[tokio::test]
async fn serve_flags_turn_verification_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.toml");
    std::fs::write(
        &file,
        "[[keys]]\naccess_key_id = \"AKIDFILE\"\nsecret_access_key = \"file-secret\"\n\n\
         [[keys.rules]]\neffect = \"allow\"\nactions = [\"kinesis:List*\"]\n",
    )
    .unwrap();
    let cases: [(&[&str], (&str, &str), bool); 3] = [
        (
            &["--access-key", "AKIDFLAG", "--secret-key", "flag-secret"],
            ("AKIDFLAG", "flag-secret"),
            true,
        ),
        (
            &["--credentials", file.to_str().unwrap()],
            ("AKIDFILE", "file-secret"),
            false,
        ),
        (
            &[
                "--access-key",
                "AKIDFLAG",
                "--secret-key",
                "flag-secret",
                "--no-admin",
            ],
            ("AKIDFLAG", "flag-secret"),
            true,
        ),
    ];
    for (i, (args, key, may_create)) in cases.into_iter().enumerate() {
        let data = dir.path().join(format!("data-{i}"));
        let child = crate::support::ChildEngine::spawn(&data, args);
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&child.endpoint)
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled());
        let right = aws_sdk_kinesis::Client::from_conf(
            config
                .clone()
                .credentials_provider(sdk_credentials(key.0, key.1, None))
                .build(),
        );
        let wrong = aws_sdk_kinesis::Client::from_conf(
            config
                .credentials_provider(sdk_credentials(key.0, "wrong", None))
                .build(),
        );
        right.list_streams().send().await.unwrap();
        let (code, _) = code_of(wrong.list_streams().send().await);
        assert_eq!(code, "InvalidSignatureException", "{args:?}");
        let created = right
            .create_stream()
            .stream_name("s")
            .shard_count(1)
            .send()
            .await;
        if may_create {
            created.unwrap();
        } else if args.contains(&"--credentials") {
            assert_eq!(code_of(created).0, "AccessDeniedException");
        }
        if args.contains(&"--no-admin") {
            let port: u16 = child.endpoint.rsplit(':').next().unwrap().parse().unwrap();
            let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            socket
                .write_all(
                    b"GET /_shardline/faults HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .await
                .unwrap();
            let mut reply = String::new();
            socket.read_to_string(&mut reply).await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        }
        child.kill();
    }
}

/// Over HTTP/2 the host travels as `:authority`, which must count as the signed `host`.
#[tokio::test]
async fn http2_requests_are_verified_with_the_authority_as_host() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let engine = verifying().await;
    let socket = TcpStream::connect(engine.local_addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(socket))
            .await
            .unwrap();
    tokio::spawn(connection);
    let host = engine.local_addr().to_string();
    for (secret, status) in [(PLAIN.1, 200), ("wrong", 400)] {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{host}/"))
            .header("host", &host)
            .header(LIST_STREAMS[0].0, LIST_STREAMS[0].1)
            .header(LIST_STREAMS[1].0, LIST_STREAMS[1].1)
            .body(b"{}".to_vec())
            .unwrap();
        sign_with(&mut request, Signer::new((PLAIN.0, secret), "kinesis"));
        let (mut parts, body) = request.into_parts();
        parts.headers.remove("host");
        let request = http::Request::from_parts(parts, Full::new(bytes::Bytes::from(body)));
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), status);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if status != 200 {
            let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(reply["__type"], "InvalidSignatureException");
        }
    }
}
