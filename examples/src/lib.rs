//! Shardline examples: the quickstart and real scenarios land with their own issue.
