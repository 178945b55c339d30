//! End-to-end tests of the Kinesis API: each starts an engine in-process on a loopback port and
//! drives it through `aws-sdk-kinesis` over HTTP (or raw HTTP where the SDK would hide the bytes).

mod account;
mod auth;
mod capacity;
mod cbor;
mod cbor_direct;
mod channels;
mod cloudwatch;
mod common;
mod dashboard;
mod distribution;
mod durable;
mod encryption;
mod errors;
mod fan_out;
mod fan_out_batching;
mod faults;
mod kept;
mod limits;
mod listener;
mod logging;
mod monitoring;
mod operations;
mod policy;
mod protocol;
mod queues;
mod read_back;
mod records;
mod reshard;
mod shards;
mod streams;
#[path = "../support/mod.rs"]
mod support;
mod tagging;
mod timing;
mod tls;
