//! Engine-backed tests.
