//! `--retrieval`: how the examples' `kcl` workers read their shards.

use std::fmt;

/// The `--retrieval` flag of the example binaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RetrievalArg {
    /// Enhanced fan-out: the application's own SubscribeToShard push pipe per shard.
    #[default]
    FanOut,
    /// GetRecords polling, sharing each shard's 5 reads/s with every other polling reader.
    Polling,
}

impl RetrievalArg {
    /// The `kcl` setting (fan-out with the consumer named after the application).
    pub fn retrieval(self) -> kcl::Retrieval {
        match self {
            RetrievalArg::FanOut => kcl::Retrieval::fan_out(),
            RetrievalArg::Polling => kcl::Retrieval::Polling,
        }
    }
}

impl fmt::Display for RetrievalArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetrievalArg::FanOut => "fan-out",
            RetrievalArg::Polling => "polling",
        })
    }
}
