//! The admin key, bad credentials, the `serve` flags and HTTP/2.

use super::*;

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
