//! Changes of what AWS keeps for a stream, a consumer or the account (settings, tags,
//! policies), made durable before they become visible: the change is planned on a copy of the
//! persistent description, the metadata with the copy is saved, and only then does the copy
//! take effect.

use crate::error::ApiError;
use crate::model::registry::Pending;
use crate::model::settings::AccountSettings;
use crate::model::stream::{Stream, StreamMeta};

use super::Kinesis;

impl Kinesis {
    /// Changes the settings, tags, or consumers' tags and policies of `stream` through `edit`
    /// on its persistent description; other changes `edit` makes to the description are
    /// ignored. Consumers are neither added nor removed here.
    pub(crate) fn keep<T>(
        &self,
        stream: &Stream,
        edit: impl FnOnce(&mut StreamMeta) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let mut meta = {
            let state = stream.state.lock();
            if state.deleted {
                return Err(self.stream_not_found(&stream.name));
            }
            state.to_meta(stream)
        };
        let value = edit(&mut meta)?;
        self.save_metadata(Pending::Kept(stream.id, &meta))?;
        let mut state = stream.state.lock();
        state.settings = meta.settings;
        state.tags = meta.tags;
        for kept in meta.consumers {
            if let Some(live) = state.consumers.get_mut(&kept.name) {
                live.tags = kept.tags;
                live.policy = kept.policy;
            }
        }
        Ok(value)
    }

    /// Changes the account settings through `edit` on a copy, saved before it takes effect.
    pub(crate) fn keep_account<T>(
        &self,
        edit: impl FnOnce(&mut AccountSettings) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let mut account = self.registry.account.lock().clone();
        let value = edit(&mut account)?;
        self.save_metadata(Pending::Account(&account))?;
        *self.registry.account.lock() = account;
        Ok(value)
    }
}
