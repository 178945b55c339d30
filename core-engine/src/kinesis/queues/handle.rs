//! Receipt handles: which queue, which path (normal or dead-letter), which record and which
//! delivery of it, as URL-safe base64 of `<queue id>:<n|d>:<shard>:<sequence>:<delivery>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::state::RecordKey;

/// What a receipt handle names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ReceiptHandle {
    pub(super) queue_id: String,
    pub(super) dead_letter: bool,
    pub(super) key: RecordKey,
    pub(super) delivery: u64,
}

impl ReceiptHandle {
    pub(super) fn encode(&self) -> String {
        let path = if self.dead_letter { 'd' } else { 'n' };
        let text = format!(
            "{}:{path}:{}:{}:{}",
            self.queue_id, self.key.shard, self.key.seq, self.delivery
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The handle `text` encodes, if it is one.
    pub(super) fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        let queue_id = parts.next()?.to_owned();
        let dead_letter = match parts.next()? {
            "n" => false,
            "d" => true,
            _ => return None,
        };
        let shard = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let delivery = parts.next()?.parse().ok()?;
        if parts.next().is_some() || queue_id.is_empty() {
            return None;
        }
        Some(Self {
            queue_id,
            dead_letter,
            key: RecordKey { shard, seq },
            delivery,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_garbage_is_refused() {
        let handle = ReceiptHandle {
            queue_id: "q1".into(),
            dead_letter: true,
            key: RecordKey {
                shard: 3,
                seq: 49_000_000_000_000_000_000_000,
            },
            delivery: 7,
        };
        assert_eq!(ReceiptHandle::decode(&handle.encode()), Some(handle));
        assert_eq!(ReceiptHandle::decode("not a handle"), None);
        assert_eq!(
            ReceiptHandle::decode(&URL_SAFE_NO_PAD.encode("q:x:1:2:3")),
            None
        );
    }
}
