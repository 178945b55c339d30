//! `--protocol cbor`: PutRecords and GetRecords in `application/x-amz-cbor-1.1`, the Java SDKs'
//! default (and so the Java KCL's and KPL's), over raw HTTP/1.1 keep-alive connections. The
//! Rust SDK speaks only awsJson1.1, so the requests are written and the answers read by hand:
//! only what the bench needs (record counts, data bytes, the next iterator).

use anyhow::{Context, Result, bail, ensure};
use minicbor::Decoder;
use minicbor::data::Type;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
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
    connection: BufReader<TcpStream>,
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
        Ok(Self {
            host,
            connection: BufReader::new(stream),
        })
    }

    /// PutRecords of `count` records of `data`, keys from `key(i)`; gives the failed count.
    pub async fn put_records(
        &mut self,
        stream: &str,
        data: &[u8],
        count: usize,
        key: impl Fn(usize) -> String,
    ) -> Result<u64> {
        let mut body = Vec::with_capacity(64 + count * (data.len() + 40));
        head(&mut body, 5, 2);
        text(&mut body, "StreamName");
        text(&mut body, stream);
        text(&mut body, "Records");
        head(&mut body, 4, count as u64);
        for i in 0..count {
            head(&mut body, 5, 2);
            text(&mut body, "Data");
            head(&mut body, 2, data.len() as u64);
            body.extend_from_slice(data);
            text(&mut body, "PartitionKey");
            text(&mut body, &key(i));
        }
        let answer = self.call("PutRecords", &body).await?;
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
        let mut body = Vec::with_capacity(iterator.len() + 40);
        head(&mut body, 5, 2);
        text(&mut body, "ShardIterator");
        text(&mut body, iterator);
        text(&mut body, "Limit");
        head(&mut body, 0, limit);
        let answer = self.call("GetRecords", &body).await?;
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
    async fn call(&mut self, operation: &str, body: &[u8]) -> Result<Vec<u8>> {
        let request = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: {CONTENT_TYPE}\r\nx-amz-target: Kinesis_20131202.{operation}\r\nauthorization: {AUTHORIZATION}\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.connection.get_mut();
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        // The status line and headers, up to the empty line.
        let mut status = 0;
        let mut length = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            read_line(&mut self.connection, &mut line).await?;
            if line.is_empty() {
                break;
            }
            let text = std::str::from_utf8(&line)?;
            if status == 0 {
                status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .context("a bad status line")?;
            } else if let Some((name, value)) = text.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let length = length.context("the answer has no content-length")?;
        let mut answer = vec![0; length];
        self.connection.read_exact(&mut answer).await?;
        ensure!(
            status == 200,
            "{operation} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        Ok(answer)
    }
}

async fn read_line(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> Result<()> {
    loop {
        let byte = reader.read_u8().await.context("the connection closed")?;
        if byte == b'\n' {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(());
        }
        line.push(byte);
    }
}

fn map_len(d: &mut Decoder<'_>) -> Result<u64> {
    match d.map()? {
        Some(n) => Ok(n),
        None => bail!("indefinite map in the answer"),
    }
}

/// A CBOR head: major type and argument, shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend([major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
