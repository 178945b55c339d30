//! End-to-end tests of Shardline: the engine, a `kpl` producer and a fleet of `kcl` workers
//! together (the tests are in `tests/e2e/`; this library is their harness).
//!
//! The workload is the quickstart's clickstream (`examples::clickstream`): every event carries its
//! user's sequence number, so [`examples::features::Shared::report`] can tell lost records,
//! per-user reordering and replays apart.
//!
//! # Endpoints
//!
//! By default every test starts its own engine in-process. To run the suite against a running
//! engine (`core-engine serve`), another emulator, or AWS, configure it the standard way
//! (`aws-config`: the environment and profiles): set `AWS_ENDPOINT_URL` (or the per-service
//! `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_DYNAMODB`), or `SHARDLINE_E2E=aws` to use AWS
//! in the configured region with the configured credentials. The older `KINESIS_ENDPOINT` and
//! `DYNAMODB_ENDPOINT` still work and override the rest.
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:4567 cargo test -p integration
//! AWS_PROFILE=dev AWS_REGION=eu-west-1 SHARDLINE_E2E=aws cargo test -p integration
//! ```
//!
//! Against an endpoint that is not AWS's, credentials are dummies unless configured (an engine
//! does not check them); the region defaults to `us-east-1`. Streams and lease tables get
//! unique names. Tests that need to control the
//! engine itself (fault injection, restarts) are skipped against external endpoints.

pub mod env;
pub mod fleet;
pub mod load;

pub use env::TestEnv;
pub use fleet::{Fleet, StallSwitch};
pub use load::Load;

/// The README's Rust code blocks (the five-minute tour included), compiled as doctests so the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The Rust code blocks of the reference pages in `docs/`, compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/engine.md")]
#[doc = include_str!("../../docs/kpl.md")]
#[doc = include_str!("../../docs/kcl.md")]
#[doc = include_str!("../../docs/fleet.md")]
#[doc = include_str!("../../docs/comparison.md")]
pub struct DocsDoctests;
