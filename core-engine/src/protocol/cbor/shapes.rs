//! Where the blob and timestamp members of each Kinesis operation are.
//!
//! CBOR gives blobs and timestamps their own wire forms, JSON does not, so the translation needs
//! to know, per operation, which members they are. The table below lists every blob and
//! timestamp member of the Kinesis model (botocore `kinesis/2013-12-02/service-2.json`),
//! including operations this engine may not serve yet, so that new operations work over CBOR
//! without touching this file. A member is found by its path from the top-level structure;
//! [`EACH`] stands for every element of a list.

/// Stands for "every element of this list" in a [`Path`].
pub(crate) const EACH: &str = "[]";

/// The member names from the top-level structure down to one member.
pub(crate) type Path = &'static [&'static str];

/// The blob and timestamp members of one operation's input or output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Members holding bytes: base64 strings in JSON, byte strings in CBOR.
    pub(crate) blobs: &'static [Path],
    /// Members holding instants: epoch seconds in JSON, tag 1 + epoch milliseconds in CBOR.
    pub(crate) timestamps: &'static [Path],
}

impl Shape {
    /// A shape with no blob or timestamp members.
    pub(crate) const PLAIN: Self = Self {
        blobs: &[],
        timestamps: &[],
    };

    /// A shape that is itself one timestamp.
    pub(crate) const TIMESTAMP: Self = Self::timestamps(&[&[]]);

    const fn timestamps(timestamps: &'static [Path]) -> Self {
        Self {
            blobs: &[],
            timestamps,
        }
    }
}

/// The shape of `operation`'s request.
pub(crate) fn input_shape(operation: &str) -> Shape {
    match operation {
        "PutRecord" => Shape {
            blobs: &[&["Data"]],
            timestamps: &[],
        },
        "PutRecords" => Shape {
            blobs: &[&["Records", EACH, "Data"]],
            timestamps: &[],
        },
        "GetShardIterator" => Shape::timestamps(&[&["Timestamp"]]),
        "ListShards" => {
            Shape::timestamps(&[&["StreamCreationTimestamp"], &["ShardFilter", "Timestamp"]])
        }
        "ListStreamConsumers" => Shape::timestamps(&[&["StreamCreationTimestamp"]]),
        "SubscribeToShard" => Shape::timestamps(&[&["StartingPosition", "Timestamp"]]),
        _ => Shape::PLAIN,
    }
}

/// The shape of `operation`'s response.
pub(crate) fn output_shape(operation: &str) -> Shape {
    const BILLING: Shape = Shape::timestamps(&[
        &["MinimumThroughputBillingCommitment", "StartedAt"],
        &["MinimumThroughputBillingCommitment", "EndedAt"],
        &["MinimumThroughputBillingCommitment", "EarliestAllowedEndAt"],
    ]);
    match operation {
        "GetRecords" => Shape {
            blobs: &[&["Records", EACH, "Data"]],
            timestamps: &[&["Records", EACH, "ApproximateArrivalTimestamp"]],
        },
        "DescribeStream" => Shape::timestamps(&[&["StreamDescription", "StreamCreationTimestamp"]]),
        "DescribeStreamSummary" => {
            Shape::timestamps(&[&["StreamDescriptionSummary", "StreamCreationTimestamp"]])
        }
        "ListStreams" => {
            Shape::timestamps(&[&["StreamSummaries", EACH, "StreamCreationTimestamp"]])
        }
        "RegisterStreamConsumer" => {
            Shape::timestamps(&[&["Consumer", "ConsumerCreationTimestamp"]])
        }
        "DescribeStreamConsumer" => {
            Shape::timestamps(&[&["ConsumerDescription", "ConsumerCreationTimestamp"]])
        }
        "ListStreamConsumers" => {
            Shape::timestamps(&[&["Consumers", EACH, "ConsumerCreationTimestamp"]])
        }
        "DescribeAccountSettings" | "UpdateAccountSettings" => BILLING,
        _ => Shape::PLAIN,
    }
}

/// The shape of the payload of a SubscribeToShard event-stream message of this `:event-type`.
pub(crate) fn event_shape(event_type: &str) -> Shape {
    match event_type {
        "SubscribeToShardEvent" => output_shape("GetRecords"),
        _ => Shape::PLAIN,
    }
}

/// Which of a shape's paths are still matched at one point of a walk through a document: bit
/// `i` of `blobs` (or `timestamps`) is set while the walk has followed the first `depth`
/// segments of path `i`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    shape: Shape,
    depth: usize,
    blobs: u64,
    timestamps: u64,
}

/// What a scalar value at a cursor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member {
    Blob,
    Timestamp,
    Other,
}

impl Cursor {
    /// The cursor at the top of a document of this shape.
    pub(crate) fn root(shape: Shape) -> Self {
        // Shapes have a handful of paths; more than 64 would be a mistake in the table above.
        debug_assert!(shape.blobs.len() <= 64 && shape.timestamps.len() <= 64);
        Self {
            shape,
            depth: 0,
            blobs: all(shape.blobs.len()),
            timestamps: all(shape.timestamps.len()),
        }
    }

    /// The cursor inside the member `key` of the structure (or map) at this cursor.
    pub(crate) fn member(&self, key: &str) -> Self {
        self.step(key)
    }

    /// The cursor at each element of the list at this cursor.
    pub(crate) fn element(&self) -> Self {
        self.step(EACH)
    }

    /// Whether the value at this cursor is a blob, a timestamp or neither.
    pub(crate) fn member_kind(&self) -> Member {
        if ends_here(self.shape.blobs, self.blobs, self.depth) {
            Member::Blob
        } else if ends_here(self.shape.timestamps, self.timestamps, self.depth) {
            Member::Timestamp
        } else {
            Member::Other
        }
    }

    fn step(&self, segment: &str) -> Self {
        Self {
            shape: self.shape,
            depth: self.depth + 1,
            blobs: narrow(self.shape.blobs, self.blobs, self.depth, segment),
            timestamps: narrow(self.shape.timestamps, self.timestamps, self.depth, segment),
        }
    }
}

fn all(count: usize) -> u64 {
    match count {
        0 => 0,
        64.. => u64::MAX,
        n => (1 << n) - 1,
    }
}

/// The paths of `live` whose segment at `depth` is `segment`.
fn narrow(paths: &[Path], live: u64, depth: usize, segment: &str) -> u64 {
    if live == 0 {
        return 0;
    }
    paths
        .iter()
        .enumerate()
        .filter(|&(i, path)| live & (1 << i) != 0 && path.get(depth) == Some(&segment))
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

/// Whether one of the paths of `live` ends at `depth`.
fn ends_here(paths: &[Path], live: u64, depth: usize) -> bool {
    live != 0
        && paths
            .iter()
            .enumerate()
            .any(|(i, path)| live & (1 << i) != 0 && path.len() == depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_follow_paths_through_structures_and_lists() {
        let root = Cursor::root(output_shape("GetRecords"));
        assert_eq!(root.member_kind(), Member::Other);
        let record = root.member("Records").element();
        assert_eq!(record.member("Data").member_kind(), Member::Blob);
        assert_eq!(
            record.member("ApproximateArrivalTimestamp").member_kind(),
            Member::Timestamp
        );
        assert_eq!(record.member("PartitionKey").member_kind(), Member::Other);
        // The same names elsewhere are not blobs or timestamps.
        assert_eq!(root.member("Data").member_kind(), Member::Other);
        assert_eq!(
            root.member("Records").member("Data").member_kind(),
            Member::Other
        );
        assert_eq!(record.member("Data").element().member_kind(), Member::Other);
    }

    #[test]
    fn every_modelled_blob_and_timestamp_is_listed() {
        let stamp = |op, path: &[&str]| {
            let mut cursor = Cursor::root(output_shape(op));
            for segment in path {
                cursor = cursor.step(segment);
            }
            cursor.member_kind()
        };
        assert_eq!(
            stamp(
                "DescribeStream",
                &["StreamDescription", "StreamCreationTimestamp"]
            ),
            Member::Timestamp
        );
        assert_eq!(
            stamp(
                "ListStreamConsumers",
                &["Consumers", EACH, "ConsumerCreationTimestamp"]
            ),
            Member::Timestamp
        );
        assert_eq!(
            stamp(
                "UpdateAccountSettings",
                &["MinimumThroughputBillingCommitment", "EndedAt"]
            ),
            Member::Timestamp
        );
        let input = Cursor::root(input_shape("ListShards"));
        assert_eq!(
            input
                .member("ShardFilter")
                .member("Timestamp")
                .member_kind(),
            Member::Timestamp
        );
        let put = Cursor::root(input_shape("PutRecords"));
        assert_eq!(
            put.member("Records").element().member("Data").member_kind(),
            Member::Blob
        );
        assert_eq!(
            Cursor::root(Shape::PLAIN).member("Data").member_kind(),
            Member::Other
        );
    }
}
