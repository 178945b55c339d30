//! What a run creates (streams and DynamoDB tables), and deleting it afterwards.

use std::fmt;

use anyhow::Result;

/// The streams and DynamoDB tables (lease tables included) a run creates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Kinesis streams, with the enhanced fan-out consumers the applications register on them.
    pub streams: Vec<String>,
    /// DynamoDB tables: the applications' lease tables (named after the application) and any
    /// table of their own.
    pub tables: Vec<String>,
}

impl Resources {
    /// Deletes them; what does not exist (a run that failed early) is not an error. A stream
    /// goes with its enhanced fan-out consumers (AWS refuses to delete a stream that has some
    /// otherwise). Returns what could not be deleted, each with the reason.
    pub async fn delete(
        &self,
        kinesis: &aws_sdk_kinesis::Client,
        dynamodb: &aws_sdk_dynamodb::Client,
    ) -> Vec<anyhow::Error> {
        let mut failed = Vec::new();
        for stream in &self.streams {
            let deleted = kinesis
                .delete_stream()
                .stream_name(stream)
                .enforce_consumer_deletion(true)
                .send()
                .await;
            if let Err(e) = deleted {
                let missing = e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if !missing {
                    failed.push(anyhow::Error::new(e).context(format!("deleting stream {stream}")));
                }
            }
        }
        for table in &self.tables {
            let deleted = dynamodb.delete_table().table_name(table).send().await;
            if let Err(e) = deleted {
                let missing = e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if !missing {
                    failed.push(anyhow::Error::new(e).context(format!("deleting table {table}")));
                }
            }
        }
        failed
    }

    /// Deletes them unless `keep`, and says on stdout what was deleted or left behind (and on
    /// stderr what could not be deleted). Fails when something could not be deleted.
    pub async fn clean_up(
        &self,
        kinesis: &aws_sdk_kinesis::Client,
        dynamodb: &aws_sdk_dynamodb::Client,
        keep: bool,
    ) -> Result<()> {
        if keep {
            println!("left in place (--keep): {self}");
            return Ok(());
        }
        let failed = self.delete(kinesis, dynamodb).await;
        if failed.is_empty() {
            println!("deleted {self}");
            return Ok(());
        }
        for e in &failed {
            eprintln!("error: {e:#}");
        }
        anyhow::bail!(
            "{} of the run's streams and tables could not be deleted",
            failed.len()
        )
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "streams [{}], tables [{}]",
            self.streams.join(", "),
            self.tables.join(", ")
        )
    }
}
