//! core-engine
pub mod storage;
