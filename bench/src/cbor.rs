//! `--protocol cbor`: PutRecords and GetRecords in `application/x-amz-cbor-1.1`, the Java SDKs'
//! default (and so the Java KCL's and KPL's), over one hyper HTTP/1.1 keep-alive connection
//! each. The Rust SDK speaks only awsJson1.1, so the bodies are encoded and read with minicbor:
//! only what the bench needs (record counts, data bytes, the next iterator).

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use minicbor::data::Type;
use minicbor::{Decoder, Encoder};
use tokio::net::TcpStream;

const CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";
/// Any signature passes an engine that does not verify them; its presence is what counts.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00";

/// The wire protocol of the engine subcommands' PutRecords and GetRecords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// awsJson1.1 through aws-sdk-kinesis.
    Json,
    /// CBOR over raw HTTP/1.1.
    Cbor,
}

/// One keep-alive HTTP/1.1 connection speaking CBOR.
pub struct Client {
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

/// What the bench reads from a GetRecords answer.
pub struct Records {
    pub count: usize,
    pub data_bytes: usize,
    pub next_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
}

impl Client {
    /// Connects to `endpoint` (`http://host:port`).
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let host = endpoint
            .strip_prefix("http://")
            .context("--protocol cbor needs an http:// endpoint")?
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP/1.1 to {host}"))?;
        tokio::spawn(connection);
        Ok(Self { host, sender })
    }

    /// PutRecords of `count` records of `data`, keys from `key(i)`; gives the failed count.
    pub async fn put_records(
        &mut self,
        stream: &str,
        data: &[u8],
        count: usize,
        key: impl Fn(usize) -> String,
    ) -> Result<u64> {
        let mut body = Encoder::new(Vec::with_capacity(64 + count * (data.len() + 40)));
        body.map(2)?.str("StreamName")?.str(stream)?;
        body.str("Records")?.array(count as u64)?;
        for i in 0..count {
            body.map(2)?.str("Data")?.bytes(data)?;
            body.str("PartitionKey")?.str(&key(i))?;
        }
        let body = body.into_writer();
        let answer = self.call("PutRecords", body).await?;
        let mut d = Decoder::new(&answer);
        let mut failed = None;
        for _ in 0..map_len(&mut d)? {
            match d.str()? {
                "FailedRecordCount" => failed = Some(d.u64()?),
                _ => d.skip()?,
            }
        }
        failed.context("no FailedRecordCount in the answer")
    }

    /// GetRecords from `iterator`, at most `limit` records.
    pub async fn get_records(&mut self, iterator: &str, limit: u64) -> Result<Records> {
        let mut body = Encoder::new(Vec::with_capacity(iterator.len() + 40));
        body.map(2)?.str("ShardIterator")?.str(iterator)?;
        body.str("Limit")?.u64(limit)?;
        let body = body.into_writer();
        let answer = self.call("GetRecords", body).await?;
        let mut d = Decoder::new(&answer);
        let mut out = Records {
            count: 0,
            data_bytes: 0,
            next_iterator: None,
            millis_behind_latest: None,
        };
        for _ in 0..map_len(&mut d)? {
            match d.str()? {
                "Records" => {
                    let n = d.array()?.context("indefinite Records")?;
                    out.count = n as usize;
                    for _ in 0..n {
                        for _ in 0..map_len(&mut d)? {
                            match d.str()? {
                                "Data" => out.data_bytes += d.bytes()?.len(),
                                _ => d.skip()?,
                            }
                        }
                    }
                }
                "NextShardIterator" if d.datatype()? == Type::Null => d.skip()?,
                "NextShardIterator" => out.next_iterator = Some(d.str()?.to_owned()),
                "MillisBehindLatest" => out.millis_behind_latest = Some(d.i64()?),
                _ => d.skip()?,
            }
        }
        Ok(out)
    }

    /// Posts one Kinesis call and gives the body of its 200 answer.
    async fn call(&mut self, operation: &str, body: Vec<u8>) -> Result<Bytes> {
        let request = hyper::Request::post("/")
            .header("host", &self.host)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
            .header("authorization", AUTHORIZATION)
            .body(Full::new(Bytes::from(body)))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        ensure!(
            status.is_success(),
            "{operation} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        Ok(answer)
    }
}

fn map_len(d: &mut Decoder<'_>) -> Result<u64> {
    match d.map()? {
        Some(n) => Ok(n),
        None => bail!("indefinite map in the answer"),
    }
}
