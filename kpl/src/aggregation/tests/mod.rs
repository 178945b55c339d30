//! Tests of the aggregation codec.

mod vectors;
