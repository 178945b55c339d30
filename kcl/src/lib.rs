//! `kcl`: the Shardline consumer framework (leases, checkpoints, record processors and retrieval for Kinesis). Its implementation lands with its own issue.
