//! Conditional reads and writes on the lease table (the `DynamoDBLeaseRefresher` operations).
//!
//! Every write that changes ownership or progress is conditioned on `leaseCounter`, so a worker
//! whose view is stale loses the race instead of overwriting another worker's state.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

use super::serializer::*;
use super::{Checkpoint, Lease, from_item, to_item};
use crate::error::{self, Error, Result};

/// Access to one lease table. Every call is bounded by the table's timeout (default 5 s, see
/// [`LeaseTable::with_timeout`]); a call without an answer by then fails with
/// [`Error::Timeout`].
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    name: String,
    timeout: Duration,
}

/// The progress fields a checkpoint write sets.
#[derive(Debug, Clone, Default)]
pub struct CheckpointUpdate {
    /// New `checkpoint`; `None` leaves it (a prepare).
    pub checkpoint: Option<Checkpoint>,
    /// New `pendingCheckpoint`; `None` removes it.
    pub pending: Option<Checkpoint>,
    /// New `pendingCheckpointState`; removed when `None`.
    pub pending_state: Option<Vec<u8>>,
    /// `childShardIds` to record (at shard end).
    pub child_shard_ids: Vec<String>,
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    error::code(e) == Some("ConditionalCheckFailedException")
}

impl LeaseTable {
    /// A handle on table `name`.
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            timeout: crate::Config::default().dynamodb_timeout,
        }
    }

    /// The same table with every call bounded by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table (hash key `leaseKey`, on-demand billing) unless it exists, then waits up
    /// to `wait` for it to be ACTIVE.
    pub async fn create_if_not_exists(&self, wait: Duration) -> Result<()> {
        if self.status().await? != Some(TableStatus::Active) {
            let created = self
                .call(
                    "CreateTable",
                    self.client
                        .create_table()
                        .table_name(&self.name)
                        .billing_mode(BillingMode::PayPerRequest)
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(LEASE_KEY)
                                .key_type(KeyType::Hash)
                                .build()
                                .map_err(|e| Error::Config(e.to_string()))?,
                        )
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(LEASE_KEY)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .map_err(|e| Error::Config(e.to_string()))?,
                        )
                        .send(),
                )
                .await?;
            match created {
                Ok(_) => tracing::info!(table = %self.name, "created lease table"),
                // Another worker created it first.
                Err(e) if error::code(&e) == Some("ResourceInUseException") => {}
                Err(e) => return Err(error::ddb("CreateTable", e)),
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.status().await? == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::TableNotActive(self.name.clone()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn status(&self) -> Result<Option<TableStatus>> {
        match self
            .call(
                "DescribeTable",
                self.client.describe_table().table_name(&self.name).send(),
            )
            .await?
        {
            Ok(out) => Ok(out.table.and_then(|t| t.table_status)),
            Err(e) if error::code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(error::ddb("DescribeTable", e)),
        }
    }

    /// Every lease, by a consistent paginated scan. Malformed items are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<Lease>> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = error::ddb_call(
                self.timeout,
                "Scan",
                self.client
                    .scan()
                    .table_name(&self.name)
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send(),
            )
            .await?;
            for item in out.items() {
                match from_item(item) {
                    Ok(lease) => leases.push(lease),
                    Err(e) => tracing::warn!(table = %self.name, error = %e, "skipping lease item"),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(leases),
            }
        }
    }

    /// One lease, read consistently.
    pub async fn get(&self, key: &str) -> Result<Option<Lease>> {
        let out = error::ddb_call(
            self.timeout,
            "GetItem",
            self.client
                .get_item()
                .table_name(&self.name)
                .key(LEASE_KEY, s(key))
                .consistent_read(true)
                .send(),
        )
        .await?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// Writes `lease` unless a lease with its key exists; `true` if written.
    pub async fn create_if_absent(&self, lease: &Lease) -> Result<bool> {
        match self
            .call(
                "PutItem",
                self.client
                    .put_item()
                    .table_name(&self.name)
                    .set_item(Some(to_item(lease)))
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", LEASE_KEY)
                    .send(),
            )
            .await?
        {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(error::ddb("PutItem", e)),
        }
    }

    /// Heartbeat: `leaseCounter` := `counter` + 1 if it is still `counter` and no graceful
    /// handoff (`checkpointOwner`, KCL 3.x) is under way. `false` means the lease was lost.
    pub async fn renew(&self, key: &str, counter: u64) -> Result<bool> {
        self.update(
            "renew",
            key,
            "SET #c = :new",
            "#c = :old AND attribute_not_exists(#co)",
            &[("#c", LEASE_COUNTER), ("#co", CHECKPOINT_OWNER)],
            vec![(":new", n(counter + 1)), (":old", n(counter))],
        )
        .await
    }

    /// Takes the lease for `owner` if its counter is still `seen_counter` (the value in the scan
    /// that judged it expired or stealable); the new counter is `seen_counter + 1`. As in the Java
    /// KCL, `ownerSwitchesSinceCheckpoint` counts only a change from another owner. When the
    /// condition fails, a consistent read checks whether this very take was applied (its answer
    /// lost and the SDK's retry refused), so a won take is never reported lost.
    pub async fn take(
        &self,
        key: &str,
        owner: &str,
        seen_counter: u64,
        previous_owner: Option<&str>,
    ) -> Result<bool> {
        let switch = previous_owner.is_some_and(|p| p != owner);
        let mut names = vec![
            ("#c", LEASE_COUNTER),
            ("#o", LEASE_OWNER),
            ("#co", CHECKPOINT_OWNER),
        ];
        let mut values = vec![
            (":new", n(seen_counter + 1)),
            (":old", n(seen_counter)),
            (":me", s(owner)),
        ];
        let expression = if switch {
            names.push(("#sw", OWNER_SWITCHES));
            values.push((":one", n(1)));
            "SET #c = :new, #o = :me ADD #sw :one REMOVE #co"
        } else {
            "SET #c = :new, #o = :me REMOVE #co"
        };
        if self
            .update("take", key, expression, "#c = :old", &names, values)
            .await?
        {
            return Ok(true);
        }
        // The condition failed, which is also what a retry of a take whose answer was lost sees:
        // a consistent read tells whether the first attempt made it.
        Ok(self
            .get(key)
            .await?
            .is_some_and(|l| l.owner.as_deref() == Some(owner) && l.counter == seen_counter + 1))
    }

    /// Gives the lease up (no owner), if `owner` still holds it at `counter`.
    pub async fn evict(&self, key: &str, owner: &str, counter: u64) -> Result<bool> {
        self.update(
            "evict",
            key,
            "SET #c = :new REMOVE #o",
            "#c = :old AND #o = :me",
            &[("#c", LEASE_COUNTER), ("#o", LEASE_OWNER)],
            vec![
                (":new", n(counter + 1)),
                (":old", n(counter)),
                (":me", s(owner)),
            ],
        )
        .await
    }

    /// Records progress if `owner` still holds the lease at `counter`; the new counter is
    /// `counter + 1`. A real checkpoint resets `ownerSwitchesSinceCheckpoint` and clears any
    /// pending checkpoint; a prepare (`update.checkpoint == None`) only sets the pending fields.
    pub async fn checkpoint(
        &self,
        key: &str,
        owner: &str,
        counter: u64,
        update: CheckpointUpdate,
    ) -> Result<bool> {
        let mut set = vec!["#c = :new"];
        let mut remove = Vec::new();
        let mut values = vec![
            (":new", n(counter + 1)),
            (":old", n(counter)),
            (":me", s(owner)),
        ];
        let mut names = vec![("#c", LEASE_COUNTER), ("#o", LEASE_OWNER)];
        if let Some(cp) = &update.checkpoint {
            set.extend(["#cp = :cp", "#cps = :cps", "#sw = :zero"]);
            names.extend([
                ("#cp", CHECKPOINT),
                ("#cps", CHECKPOINT_SUB),
                ("#sw", OWNER_SWITCHES),
            ]);
            values.extend([
                (":cp", s(cp.as_str())),
                (":cps", n(cp.sub_sequence())),
                (":zero", n(0)),
            ]);
        }
        names.extend([
            ("#p", PENDING),
            ("#ps", PENDING_SUB),
            ("#pst", PENDING_STATE),
        ]);
        match &update.pending {
            Some(p) => {
                set.extend(["#p = :p", "#ps = :ps"]);
                values.extend([(":p", s(p.as_str())), (":ps", n(p.sub_sequence()))]);
            }
            None => remove.extend(["#p", "#ps"]),
        }
        match &update.pending_state {
            Some(state) => {
                set.push("#pst = :pst");
                values.push((":pst", AttributeValue::B(Blob::new(state.clone()))));
            }
            None => remove.push("#pst"),
        }
        if !update.child_shard_ids.is_empty() {
            set.push("#ch = :ch");
            names.push(("#ch", CHILDREN));
            values.push((":ch", AttributeValue::Ss(update.child_shard_ids.clone())));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        // The holder, or (during a graceful handoff) the worker handing the lease over.
        names.push(("#co", CHECKPOINT_OWNER));
        self.update(
            "checkpoint",
            key,
            &expression,
            "#c = :old AND ((#o = :me AND attribute_not_exists(#co)) OR #co = :me)",
            &names,
            values,
        )
        .await
    }

    /// Asks `from`, which holds the lease at `counter`, to hand it over to `to` (KCL 3.x's
    /// `initiateGracefulLeaseHandoff`): `leaseOwner` := `to`, `checkpointOwner` := `from`, the
    /// counter unchanged. `from`'s renewals fail from then on; it may still checkpoint, and clears
    /// `checkpointOwner` ([`finish_handoff`](Self::finish_handoff)) when done.
    pub async fn initiate_handoff(
        &self,
        key: &str,
        from: &str,
        to: &str,
        counter: u64,
    ) -> Result<bool> {
        self.update(
            "initiate handoff",
            key,
            "SET #o = :to, #co = :from",
            "#c = :cnt AND #o = :from AND attribute_not_exists(#co)",
            &[
                ("#c", LEASE_COUNTER),
                ("#o", LEASE_OWNER),
                ("#co", CHECKPOINT_OWNER),
            ],
            vec![(":to", s(to)), (":from", s(from)), (":cnt", n(counter))],
        )
        .await
    }

    /// Ends a handoff `me` was asked for (KCL 3.x's eviction during a handoff): clears
    /// `checkpointOwner` and bumps the counter, if `me` is still the checkpoint owner at
    /// `counter`. The new owner then starts from the checkpoint.
    pub async fn finish_handoff(&self, key: &str, me: &str, counter: u64) -> Result<bool> {
        self.update(
            "finish handoff",
            key,
            "SET #c = :new REMOVE #co",
            "#c = :old AND #co = :me",
            &[("#c", LEASE_COUNTER), ("#co", CHECKPOINT_OWNER)],
            vec![
                (":new", n(counter + 1)),
                (":old", n(counter)),
                (":me", s(me)),
            ],
        )
        .await
    }

    /// Deletes a lease (finished shards, after their children started).
    pub async fn delete(&self, key: &str) -> Result<()> {
        error::ddb_call(
            self.timeout,
            "DeleteItem",
            self.client
                .delete_item()
                .table_name(&self.name)
                .key(LEASE_KEY, s(key))
                .send(),
        )
        .await?;
        Ok(())
    }

    /// Runs a call under the table's timeout, leaving the SDK result to the caller (which looks
    /// at condition failures).
    async fn call<F: std::future::Future>(&self, op: &'static str, call: F) -> Result<F::Output> {
        error::within(self.timeout, "DynamoDB", op, call).await
    }

    async fn update(
        &self,
        op: &'static str,
        key: &str,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .update_expression(expression)
            // The key must exist: an update would otherwise create a stray item.
            .condition_expression(format!("attribute_exists(#key) AND {condition}"))
            .expression_attribute_names("#key", LEASE_KEY);
        for (k, v) in names {
            request = request.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            request = request.expression_attribute_values(k, v);
        }
        match self.call("UpdateItem", request.send()).await? {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(error::ddb(op, e)),
        }
    }
}
