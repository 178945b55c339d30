//! End-to-end tests of engine, producer and consumer together; they land with the quickstart issue.
