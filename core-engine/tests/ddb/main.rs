//! End-to-end tests of the DynamoDB API: each starts an engine in-process on a loopback port and
//! drives it through `aws-sdk-dynamodb`, checking what a user sees (items, codes, messages).

mod batch;
mod common;
mod control;
mod durable;
mod errors;
mod expressions;
mod faults;
mod items;
mod leases;
mod limits;
mod query_scan;
#[path = "../support/mod.rs"]
mod support;
mod tables;
