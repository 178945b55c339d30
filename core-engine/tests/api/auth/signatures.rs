//! Signatures: the SDKs with the right and a wrong secret, session tokens, each failure's
//! AWS error over raw HTTP, the clock window, presigned requests and CBOR errors.

use super::*;

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
