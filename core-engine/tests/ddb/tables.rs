//! Table lifecycle: create, describe, list, add and drop an index, delete; CREATING -> ACTIVE.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus,
    KeyType, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, TableStatus,
};
use core_engine::Engine;

use crate::common::{Ddb, attr, code_of, key};

#[tokio::test]
async fn create_describe_list_and_delete() {
    let ddb = Ddb::start().await;
    let created = ddb
        .client
        .create_table()
        .table_name("leases")
        .key_schema(key("leaseKey", KeyType::Hash))
        .attribute_definitions(attr("leaseKey", ScalarAttributeType::S))
        .billing_mode(BillingMode::PayPerRequest)
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    assert_eq!(created.table_name(), Some("leases"));
    assert_eq!(created.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        created.table_arn(),
        Some("arn:aws:dynamodb:us-east-1:000000000000:table/leases")
    );
    assert_eq!(
        created.billing_mode_summary().unwrap().billing_mode(),
        Some(&BillingMode::PayPerRequest)
    );
    ddb.table("provisioned", Some(ScalarAttributeType::N)).await;
    ddb.client
        .create_table()
        .table_name("with-throughput")
        .key_schema(key("k", KeyType::Hash))
        .attribute_definitions(attr("k", ScalarAttributeType::B))
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(10)
                .write_capacity_units(5)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let described = ddb
        .client
        .describe_table()
        .table_name("with-throughput")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let throughput = described.provisioned_throughput().unwrap();
    assert_eq!(throughput.read_capacity_units(), Some(10));
    assert_eq!(throughput.write_capacity_units(), Some(5));
    assert_eq!(described.item_count(), Some(0));

    let page = ddb.client.list_tables().limit(2).send().await.unwrap();
    assert_eq!(page.table_names(), ["leases", "provisioned"]);
    assert_eq!(page.last_evaluated_table_name(), Some("provisioned"));
    let rest = ddb
        .client
        .list_tables()
        .exclusive_start_table_name("provisioned")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.table_names(), ["with-throughput"]);
    assert_eq!(rest.last_evaluated_table_name(), None);

    let deleted = ddb
        .client
        .delete_table()
        .table_name("leases")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.table_description().unwrap().table_status(),
        Some(&TableStatus::Deleting)
    );
    let (code, message) = code_of(
        ddb.client
            .describe_table()
            .table_name("leases")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(
        message,
        "Requested resource not found: Table: leases not found"
    );
}

#[tokio::test]
async fn duplicate_and_missing_tables() {
    let ddb = Ddb::start().await;
    ddb.table("once", None).await;
    let (code, message) = code_of(
        ddb.client
            .create_table()
            .table_name("once")
            .key_schema(key("pk", KeyType::Hash))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ResourceInUseException", "Table already exists: once")
    );
    let (code, _) = code_of(ddb.client.delete_table().table_name("never").send().await);
    assert_eq!(code, "ResourceNotFoundException");
    let (code, message) = code_of(
        ddb.client
            .get_item()
            .table_name("never")
            .key("pk", crate::common::s("x"))
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ResourceNotFoundException", "Requested resource not found")
    );
}

#[tokio::test]
async fn tables_and_indexes_are_creating_then_active_and_waiters_work() {
    let ddb = Ddb::with(Engine::builder().table_create_delay(Duration::from_millis(300))).await;
    let created = ddb
        .client
        .create_table()
        .table_name("slow")
        .key_schema(key("pk", KeyType::Hash))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.table_description().unwrap().table_status(),
        Some(&TableStatus::Creating)
    );
    // Not usable while CREATING.
    let (code, _) = code_of(
        ddb.client
            .get_item()
            .table_name("slow")
            .key("pk", crate::common::s("x"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    ddb.client
        .wait_until_table_exists()
        .table_name("slow")
        .wait(Duration::from_secs(30))
        .await
        .unwrap();

    // Add the KCL 3 index: CREATING, then ACTIVE, then queryable.
    let updated = ddb
        .client
        .update_table()
        .table_name("slow")
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("leaseOwner", ScalarAttributeType::S))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name("LeaseOwnerToLeaseKeyIndex")
                        .key_schema(key("leaseOwner", KeyType::Hash))
                        .key_schema(key("pk", KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let index = &updated
        .table_description()
        .unwrap()
        .global_secondary_indexes()[0];
    assert_eq!(index.index_status(), Some(&IndexStatus::Creating));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let described = ddb
        .client
        .describe_table()
        .table_name("slow")
        .send()
        .await
        .unwrap();
    let index = &described.table().unwrap().global_secondary_indexes()[0];
    assert_eq!(index.index_name(), Some("LeaseOwnerToLeaseKeyIndex"));
    assert_eq!(index.index_status(), Some(&IndexStatus::Active));
    assert_eq!(index.key_schema().len(), 2);

    let dropped = ddb
        .client
        .update_table()
        .table_name("slow")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    aws_sdk_dynamodb::types::DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("LeaseOwnerToLeaseKeyIndex")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        dropped
            .table_description()
            .unwrap()
            .global_secondary_indexes()
            .is_empty()
    );
}

#[tokio::test]
async fn create_table_validation() {
    let ddb = Ddb::start().await;
    let (code, message) = code_of(
        ddb.client
            .create_table()
            .table_name("a b")
            .key_schema(key("pk", KeyType::Hash))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "1 validation error detected: Value 'a b' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
    let (_, message) = code_of(
        ddb.client
            .create_table()
            .table_name("nodef")
            .key_schema(key("pk", KeyType::Hash))
            .attribute_definitions(attr("other", ScalarAttributeType::S))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    assert!(
        message.contains("Some index key attributes are not defined in AttributeDefinitions"),
        "{message}"
    );
    let (_, message) = code_of(
        ddb.client
            .create_table()
            .table_name("nothroughput")
            .key_schema(key("pk", KeyType::Hash))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
    );
    let (_, message) = code_of(
        ddb.client
            .create_table()
            .table_name("rangefirst")
            .key_schema(key("pk", KeyType::Range))
            .key_schema(key("sk", KeyType::Hash))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .attribute_definitions(attr("sk", ScalarAttributeType::S))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
}
