//! HTTPS: the Rust SDKs over TLS trusting the generated CA (ordinary calls and SubscribeToShard,
//! both over HTTP/2 negotiated through ALPN), HTTP/1.1 for clients that ask for it, clients
//! that do not trust the certificate refused, certificates given as files, clear errors for bad
//! ones, and the listener's limits applied to TLS connections (a stalled handshake, the
//! connection limit).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, SubscribeToShardEventStream,
};
use bytes::Bytes;
use core_engine::tls::{TlsConnections, sdk_http_client};
use core_engine::{Engine, EngineBuilder, TlsConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::common::TestEngine;
use crate::fan_out::{consumer, subscribe};

/// Long enough that a connection still open after it will not be closed by the engine.
const PATIENCE: Duration = Duration::from_secs(10);

/// An engine serving HTTPS with `tls`, and a Kinesis client trusting `ca`.
async fn start(builder: EngineBuilder, ca: Option<&str>) -> TestEngine {
    let handle = builder.build().unwrap().start().await.unwrap();
    let ca = ca
        .map(str::to_owned)
        .or_else(|| handle.ca_certificate_pem().map(str::to_owned))
        .expect("a CA to trust");
    let client = kinesis_client(&handle.endpoint_url(), &ca);
    TestEngine { handle, client }
}

async fn self_signed() -> TestEngine {
    start(Engine::builder().tls(TlsConfig::self_signed()), None).await
}

fn kinesis_client(endpoint: &str, ca: &str) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .http_client(sdk_http_client(ca).unwrap())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

fn dynamodb_client(endpoint: &str, ca: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(sdk_http_client(ca).unwrap())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A raw TLS connection to the engine trusting `ca`, offering `alpn`.
async fn connect(engine: &TestEngine, ca: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    connect_as(engine, ca, alpn, "127.0.0.1").await.unwrap()
}

/// A raw TLS connection to the engine, expecting its certificate to name `name`.
async fn connect_as(
    engine: &TestEngine,
    ca: &str,
    alpn: &[&[u8]],
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_owned()).unwrap(), socket)
        .await
}

/// A ListStreams request for a hyper client.
fn list_streams() -> http::Request<Full<Bytes>> {
    http::Request::post("/")
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("authorization", "AWS4-HMAC-SHA256 x")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

/// Whether the engine closes the connection (EOF or reset) within [`PATIENCE`], ignoring any
/// bytes it sends first.
async fn closed_by_engine(socket: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.is_ok()
}

#[tokio::test]
async fn the_sdks_work_over_https_trusting_the_generated_ca_and_negotiate_http2() {
    let engine = self_signed().await;
    let url = engine.handle.endpoint_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    engine.create_stream("tls", 2).await;
    let entries = (0..10)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("record {i}")))
                .build()
                .unwrap()
        })
        .collect::<Vec<_>>();
    let put = engine
        .client
        .put_records()
        .stream_name("tls")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count, Some(0));
    let mut read = Vec::new();
    for shard in engine.shard_ids("tls").await {
        read.extend(engine.read_all("tls", &shard).await);
    }
    let mut data: Vec<_> = read
        .iter()
        .map(|r| String::from_utf8(r.data.as_ref().to_vec()).unwrap())
        .collect();
    data.sort();
    assert_eq!(data.len(), 10);
    assert_eq!(data[0], "record 0");

    let ddb = dynamodb_client(&url, engine.handle.ca_certificate_pem().unwrap());
    let tables = ddb.list_tables().send().await.unwrap();
    assert!(tables.table_names().is_empty());

    // The SDK's client offers h2 and http/1.1 through ALPN, and the engine picks h2: every
    // call above went over HTTP/2.
    let negotiated = engine.handle.tls_connections().unwrap();
    assert!(negotiated.h2 >= 2, "{negotiated:?}");
    assert_eq!(
        (negotiated.http1, negotiated.no_alpn),
        (0, 0),
        "{negotiated:?}"
    );
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn subscribe_to_shard_streams_records_over_http2_with_tls() {
    let engine = self_signed().await;
    engine.create_stream("fan", 1).await;
    let consumer = consumer(&engine, "tls-app").await;
    let shard = engine.shard_ids("fan").await.remove(0);
    let mut events = subscribe(&engine, &consumer, &shard, ShardIteratorType::Latest).await;
    for i in 0..3 {
        engine
            .put("fan", "k", format!("pushed {i}").as_bytes())
            .await;
    }
    let mut received = Vec::new();
    while received.len() < 3 {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("an event in time")
            .expect("a healthy stream")
            .expect("the stream is open");
        if let SubscribeToShardEventStream::SubscribeToShardEvent(event) = event {
            received.extend(
                event
                    .records
                    .into_iter()
                    .map(|r| String::from_utf8(r.data.into_inner()).unwrap()),
            );
        }
    }
    assert_eq!(received, ["pushed 0", "pushed 1", "pushed 2"]);
    let negotiated = engine.handle.tls_connections().unwrap();
    assert!(negotiated.h2 >= 1, "{negotiated:?}");
    assert_eq!(
        (negotiated.http1, negotiated.no_alpn),
        (0, 0),
        "{negotiated:?}"
    );
    drop(events);
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn alpn_picks_h2_when_offered_and_http1_is_served_too() {
    let engine = self_signed().await;
    let ca = engine.handle.ca_certificate_pem().unwrap().to_owned();

    let both = connect(&engine, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(both),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let answer = sender.send_request(list_streams()).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.version(), http::Version::HTTP_2);

    // awscli and boto3 speak HTTP/1.1 (and offer no ALPN at all).
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let stream = connect(&engine, &ca, alpn).await;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let answer = sender.send_request(list_streams()).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.version(), http::Version::HTTP_11);
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("StreamNames"));
    }
    let negotiated: TlsConnections = engine.handle.tls_connections().unwrap();
    assert_eq!(
        (negotiated.h2, negotiated.http1, negotiated.no_alpn),
        (1, 1, 1)
    );
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let other = Engine::builder()
        .tls(TlsConfig::self_signed())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let stranger_ca = other.ca_certificate_pem().unwrap().to_owned();
    let engine = start(
        Engine::builder().tls(TlsConfig::self_signed()),
        Some(&stranger_ca),
    )
    .await;
    let error = engine.client.list_streams().send().await.unwrap_err();
    let chain = format!("{:?}", error_chain(&error));
    assert!(
        error.as_service_error().is_none() && chain.contains("InvalidCertificate(UnknownIssuer)"),
        "{chain}"
    );
    // A plain-HTTP client gets nothing it can read either.
    let plain = crate::common::client(&engine.handle.endpoint_url().replace("https", "http"));
    assert!(plain.list_streams().send().await.is_err());
    engine.handle.shutdown().await;
    other.shutdown().await;
}

/// Every error in the chain, for matching on a cause the SDK wraps.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        chain.push(format!("{error:?}"));
        next = error.source();
    }
    chain
}

/// A CA and a server certificate for `localhost` only, written as PEM files.
fn certificate_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, ca_cert.pem())
}

#[tokio::test]
async fn certificates_given_as_pem_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificate_files(dir.path());
    let handle = Engine::builder()
        .tls(TlsConfig::from_pem_files(&cert, &key))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(handle.ca_certificate_pem(), None);
    // The certificate names localhost only, so the client must use that name.
    let url = format!("https://localhost:{}", handle.local_addr().port());
    let client = kinesis_client(&url, &ca);
    client
        .create_stream()
        .stream_name("files")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let by_ip = kinesis_client(&handle.endpoint_url(), &ca);
    assert!(
        by_ip.list_streams().send().await.is_err(),
        "127.0.0.1 is not a name of the certificate"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn bad_certificates_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate_files(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM").unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let (_, other_key, _) = certificate_files(other_dir.path());
    let missing = dir.path().join("missing.pem");
    let cases = [
        (
            TlsConfig::from_pem_files(&garbage, &key),
            "no PEM CERTIFICATE block found",
        ),
        (
            TlsConfig::from_pem_files(&cert, &garbage),
            "no PEM private key found",
        ),
        (
            TlsConfig::from_pem_files(&missing, &key),
            "cannot read certificate",
        ),
        (
            TlsConfig::from_pem_files(&cert, &other_key),
            "do not work together",
        ),
    ];
    for (config, expected) in cases {
        let error = Engine::builder()
            .tls(config)
            .build()
            .unwrap()
            .start()
            .await
            .expect_err("a bad certificate must stop the start");
        let message = error.to_string();
        assert!(
            matches!(error, core_engine::Error::Config(_)) && message.contains(expected),
            "{message}"
        );
    }
    // The binary says so and exits 1, without a panic.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_core-engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&garbage)
        .arg("--tls-key")
        .arg(&key)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: invalid engine configuration: TLS: certificate")
            && stderr.contains("garbage.pem")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_cut_at_the_header_read_timeout() {
    let engine = start(
        Engine::builder()
            .tls(TlsConfig::self_signed())
            .header_read_timeout(Duration::from_millis(500))
            .idle_timeout(PATIENCE * 3),
        None,
    )
    .await;
    let addr = engine.handle.local_addr();
    // One client says nothing; another starts a ClientHello and stalls.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .unwrap();
    assert!(closed_by_engine(&mut silent).await);
    assert!(closed_by_engine(&mut stalled).await);
    // Those that finish in time are served.
    engine.client.list_streams().send().await.unwrap();
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn over_the_connection_limit_tls_clients_are_answered_503_over_http1() {
    let engine = start(
        Engine::builder()
            .tls(TlsConfig::self_signed())
            .max_connections(1)
            .header_read_timeout(PATIENCE * 3)
            .idle_timeout(PATIENCE * 3),
        None,
    )
    .await;
    engine.create_stream("fan", 1).await;
    let consumer = consumer(&engine, "busy").await;
    let shard = engine.shard_ids("fan").await.remove(0);
    // The SDK's one connection is busy with a subscription (a request in flight).
    let events = subscribe(&engine, &consumer, &shard, ShardIteratorType::Latest).await;
    let ca = engine.handle.ca_certificate_pem().unwrap().to_owned();
    let refused = connect(&engine, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(refused.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(refused))
        .await
        .unwrap();
    tokio::spawn(connection);
    let answer = sender.send_request(list_streams()).await.unwrap();
    assert_eq!(answer.status(), 503);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("ServiceUnavailable"));
    drop(events);
    engine.handle.shutdown().await;
}

/// Set only in the child process of
/// [`the_sdks_default_http_client_negotiates_h2_for_calls_and_subscriptions`]: the endpoint, the
/// consumer and the shard it uses.
const CHILD_ENV: &str = "SHARDLINE_TLS_DEFAULT_CLIENT";

/// The SDK's default HTTP client (no `http_client` set: rustls with aws-lc-rs and the
/// platform's roots, which `SSL_CERT_FILE` replaces) trusts the engine through `SSL_CERT_FILE`
/// and negotiates HTTP/2 through ALPN for ordinary calls and for SubscribeToShard. It runs in a
/// child process because the SDK reads the platform's roots once per process.
#[tokio::test]
async fn the_sdks_default_http_client_negotiates_h2_for_calls_and_subscriptions() {
    let engine = self_signed().await;
    engine.create_stream("fan", 1).await;
    let consumer = consumer(&engine, "default-client").await;
    let shard = engine.shard_ids("fan").await.remove(0);
    engine.put("fan", "k", b"for the default client").await;
    let before = engine.handle.tls_connections().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, engine.handle.ca_certificate_pem().unwrap()).unwrap();
    // Not std's Command: the engine runs on this thread.
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tls::default_client_child",
            "--test-threads",
            "1",
        ])
        .env(
            CHILD_ENV,
            format!("{} {consumer} {shard}", engine.handle.endpoint_url()),
        )
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = engine.handle.tls_connections().unwrap();
    assert!(after.h2 > before.h2, "{before:?} {after:?}");
    assert_eq!(
        (after.http1, after.no_alpn),
        (before.http1, before.no_alpn),
        "{after:?}"
    );
    engine.handle.shutdown().await;
}

/// The child of [`the_sdks_default_http_client_negotiates_h2_for_calls_and_subscriptions`];
/// does nothing elsewhere.
#[tokio::test]
async fn default_client_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let [endpoint, consumer, shard] = args.split(' ').collect::<Vec<_>>()[..] else {
        panic!("bad {CHILD_ENV}: {args}");
    };
    // No http_client: the SDK's default one.
    let client = crate::common::client(endpoint);
    let streams = client.list_streams().send().await.unwrap();
    assert_eq!(streams.stream_names(), ["fan"]);
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(
            aws_sdk_kinesis::types::StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_stream;
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("an event in time")
            .expect("a healthy stream")
            .expect("the stream is open");
        if let SubscribeToShardEventStream::SubscribeToShardEvent(event) = event
            && let Some(record) = event.records.first()
        {
            assert_eq!(record.data.as_ref(), b"for the default client");
            return;
        }
    }
}

#[tokio::test]
async fn an_idle_tls_connection_is_closed_after_the_idle_timeout() {
    let engine = start(
        Engine::builder()
            .tls(TlsConfig::self_signed())
            .idle_timeout(Duration::from_millis(500)),
        None,
    )
    .await;
    let ca = engine.handle.ca_certificate_pem().unwrap().to_owned();
    let stream = connect(&engine, &ca, &[b"http/1.1"]).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(list_streams()).await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.into_body().collect().await.unwrap();
    // Nothing more is sent: the engine closes the connection (dropping it, as without TLS,
    // so without a close_notify).
    let _ended = tokio::time::timeout(PATIENCE, connection)
        .await
        .expect("the engine closes an idle connection");
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn serve_tls_writes_the_ca_and_prints_an_https_endpoint() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_core-engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls", "--tls-ca-out"])
        .arg(&ca_path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert_eq!(
        first,
        format!("core-engine CA certificate: {}", ca_path.display())
    );
    let second = lines.next_line().await.unwrap().unwrap();
    let endpoint = second
        .strip_prefix("core-engine listening on ")
        .expect("the listening line");
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{second}");
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    let client = kinesis_client(endpoint, &ca);
    client.list_streams().send().await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_generated_certificate_names_localhost_and_any_extra_names() {
    let engine = start(
        Engine::builder().tls(
            TlsConfig::self_signed()
                .name("engine.test")
                .name("10.9.8.7"),
        ),
        None,
    )
    .await;
    let ca = engine.handle.ca_certificate_pem().unwrap().to_owned();
    for name in ["127.0.0.1", "localhost", "::1", "engine.test", "10.9.8.7"] {
        connect_as(&engine, &ca, &[b"h2"], name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let error = connect_as(&engine, &ca, &[b"h2"], "other.test")
        .await
        .expect_err("a name the certificate does not have");
    assert!(error.to_string().contains("not valid for name"), "{error}");
    engine.handle.shutdown().await;
}
