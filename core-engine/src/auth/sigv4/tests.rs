//! The AWS SigV4 test suite, as shipped in botocore (`tests/unit/auth/aws4_testsuite`, copied
//! to `core-engine/tests/aws4_testsuite` with its licence): for each raw request, the
//! canonical request, the string to sign and the Authorization header must come out exactly
//! as the suite says.

use std::path::{Path, PathBuf};

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SCOPE: &str = "20150830/us-east-1/service/aws4_request";
const AMZ_DATE: &str = "20150830T123600Z";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws4_testsuite")
}

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            cases(&path, out);
        } else if path.extension().is_some_and(|e| e == "req") {
            out.push(path);
        }
    }
}

/// A raw request of the suite: the request line, headers (a line starting with whitespace
/// continues the previous value), a blank line and the body.
struct Raw {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn parse(text: &str) -> Raw {
    let text = text.replace('\r', "");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap().to_owned();
    // The target may contain spaces (get-space); the protocol is the last word.
    let target = request_line[method.len() + 1..request_line.rfind(' ').unwrap()].to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push(b'\n');
            last.1.extend_from_slice(line.as_bytes());
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        }
    }
    Raw {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn read(path: &Path, ext: &str) -> String {
    std::fs::read_to_string(path.with_extension(ext))
        .unwrap()
        .replace('\r', "")
}

#[test]
fn the_aws_test_suite_passes() {
    let mut all = Vec::new();
    cases(&suite_dir(), &mut all);
    assert!(all.len() >= 27, "found only {} cases", all.len());
    for case in all {
        let mut raw = parse(&read(&case, "req"));
        let authz = read(&case, "authz");
        let expected_creq = read(&case, "creq");
        // As botocore's runner does: a token in the canonical request is the signer's session
        // token, which it sends as a header.
        if let Some(token) = expected_creq
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-security-token:"))
            && !raw.headers.iter().any(|(n, _)| n == "x-amz-security-token")
        {
            raw.headers
                .push(("x-amz-security-token".into(), token.as_bytes().to_vec()));
        }
        // The signed headers are what the server reads from the Authorization header.
        let signed = authz
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let signed: Vec<&str> = signed.split(';').collect();
        let parts = RequestParts {
            method: &raw.method,
            path: &raw.path,
            query: &raw.query,
            headers: &raw.headers,
        };
        let creq = canonical_request(&parts, &signed, &hex_sha256(&raw.body));
        assert_eq!(creq, expected_creq, "canonical request of {case:?}");
        let sts = string_to_sign(AMZ_DATE, SCOPE, &creq);
        assert_eq!(sts, read(&case, "sts"), "string to sign of {case:?}");
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        let expected = authz.rsplit("Signature=").next().unwrap().trim();
        assert_eq!(signature(&key, &sts), expected, "signature of {case:?}");
        assert!(signature_matches(&key, &sts, expected));
        assert!(!signature_matches(&key, &sts, &expected.replace('a', "b")));
    }
}

#[test]
fn encoding_follows_the_specification() {
    assert_eq!(uri_encode(b"a b/c~d+e*", false), "a%20b%2Fc~d%2Be%2A");
    assert_eq!(uri_encode(b"/a b/", true), "/a%20b/");
    // A path arrives encoded once, and is encoded again (services other than S3).
    assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(
        canonical_query("b=2&a=%2F&a=1&X-Amz-Signature=f"),
        "a=%2F&a=1&b=2"
    );
    assert_eq!(canonical_query("k=a+b"), "k=a%2Bb");
    assert_eq!(canonical_header_value(b"  a   b \t c  "), "a b c");
    assert_eq!(unhex("0aFf"), Some(vec![0x0a, 0xff]));
    assert_eq!(unhex("0g"), None);
    assert_eq!(unhex("abc"), None);
}
