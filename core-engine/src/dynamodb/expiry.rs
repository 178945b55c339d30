//! Time to live: deleting the items whose TTL attribute has passed, on the engine's clock.
//!
//! As in DynamoDB, the TTL attribute holds a Number of seconds since the epoch; an item whose
//! attribute is missing, not a Number, or more than five years in the past is never deleted.
//! Deletion happens in periodic sweeps (every retention check interval), not at the exact
//! second, so a read may still see an item that has just expired.

use super::DynamoDb;
use super::error::DdbError;
use super::store::LogEntry;
use super::table::{PrimaryKey, Table, walk};
use super::value::{AttributeValue, Item};

/// Items older than this past their expiry time are ignored, as DynamoDB does.
const IGNORED_AFTER_SECONDS: f64 = 5.0 * 365.0 * 24.0 * 3600.0;
/// Deletions logged per frame, well under the frame limit (a key is at most a few KiB).
const DELETES_PER_FRAME: usize = 1000;

/// Whether `value` as a TTL attribute has expired at `now_seconds`.
fn expired(value: Option<&AttributeValue>, now_seconds: f64) -> bool {
    let Some(AttributeValue::N(number)) = value else {
        return false;
    };
    let Ok(at) = number.to_string().parse::<f64>() else {
        return false;
    };
    at < now_seconds && now_seconds - at <= IGNORED_AFTER_SECONDS
}

impl DynamoDb {
    /// Deletes every expired item of every table with TTL enabled; returns how many. Each
    /// deletion is logged before it is applied, like any other delete.
    pub(crate) fn expire_items(&self) -> Result<usize, DdbError> {
        let now_seconds = self.now_ms() as f64 / 1000.0;
        // The map stays read-locked so that no table is deleted (and recreated under the same
        // name) between finding the expired items and logging their deletion.
        let tables = self.tables.read();
        let mut deleted = 0;
        for table in tables.values() {
            let mut table = table.lock();
            let Some(attribute) = table.meta.ttl_attribute.clone() else {
                continue;
            };
            let doomed: Vec<(PrimaryKey, Item)> = walk(&table.items, None)
                .filter(|(_, _, item)| expired(item.get(&attribute), now_seconds))
                .map(|(hash, sort, item)| {
                    let key = Table::key_attributes(&table.meta.key, item);
                    ((hash.clone(), sort.clone()), key)
                })
                .collect();
            for chunk in doomed.chunks(DELETES_PER_FRAME) {
                let entries: Vec<LogEntry> = chunk
                    .iter()
                    .map(|(_, key)| LogEntry::Delete {
                        table: table.meta.name.clone(),
                        key: key.clone(),
                    })
                    .collect();
                self.commit(&entries)?;
                for (key, _) in chunk {
                    table.delete(key);
                }
                deleted += chunk.len();
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::number::Number;

    #[test]
    fn only_numbers_in_the_last_five_years_expire() {
        let n = |text: &str| AttributeValue::N(Number::parse(text).unwrap());
        let now = 1_000_000_000.0;
        assert!(expired(Some(&n("999999999")), now));
        assert!(expired(Some(&n("999999999.5")), now));
        assert!(!expired(Some(&n("1000000000")), now));
        assert!(!expired(Some(&n("1000000001")), now));
        assert!(!expired(Some(&n("800000000")), now));
        assert!(!expired(Some(&AttributeValue::S("1".into())), now));
        assert!(!expired(None, now));
    }
}
