//! Changes to a plugin's version: swap, reload and rollback. Each public one
//! runs through [`Supervisor::change`] (bounded wait for the lock, a task of its
//! own); the `_in` functions do the work under the lock.

use std::collections::BTreeMap;

use super::outcome::unchanged;
use super::view::Activity;
use super::{ControlError, Inner, Supervisor, SwapReport, WasmSource};
use crate::registry::Origin;

impl Supervisor {
    /// Replaces the plugin `name` with the component from `source` in every
    /// pipeline that runs it, optionally with a new config. The state carries over
    /// unless `fresh_state`.
    pub async fn swap(
        &self,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("swap", &name),
            move |this, mut inner| async move {
                let result = this
                    .swap_in(&mut inner, &name, source, config, fresh_state)
                    .await;
                (inner, result)
            },
        )
        .await
    }

    async fn swap_in(
        &self,
        inner: &mut Inner,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let entry = inner.entry(name)?.clone();
        let result = async {
            let (bytes, origin) = self.read(source).await?;
            let version = self.compile(name, bytes, origin, Some(entry.kind)).await?;
            let mut next = entry.clone();
            next.advance(version);
            if let Some(config) = config {
                next.config = config.into_iter().collect();
            }
            self.apply(inner, next, !fresh_state).await
        }
        .await;
        self.finish(inner, name, "swapped", result)
    }

    /// Reads the plugin's file again and swaps it in if its bytes changed.
    pub async fn reload(&self, name: &str) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("reload", &name),
            move |this, mut inner| async move {
                let result = this.reload_in(&mut inner, &name).await;
                (inner, result)
            },
        )
        .await
    }

    async fn reload_in(&self, inner: &mut Inner, name: &str) -> Result<SwapReport, ControlError> {
        let entry = inner.entry(name)?.clone();
        let Origin::Path(path) = &entry.current.origin else {
            return Err(ControlError::Conflict(format!(
                "plugin `{name}` runs {}, not a file; swap it to a file instead",
                entry.current.origin
            )));
        };
        let result = async {
            let bytes = tokio::fs::read(path).await.map_err(|e| {
                ControlError::Refused(format!("cannot read {}: {e}", path.display()))
            })?;
            if wasmeter_plugin::content_hash(&bytes) == entry.current.loaded.meta().hash {
                return Ok(None);
            }
            let version = self
                .compile(name, bytes, Origin::Path(path.clone()), Some(entry.kind))
                .await?;
            let mut next = entry.clone();
            next.advance(version);
            self.apply(inner, next, true).await.map(Some)
        }
        .await;
        match result {
            Ok(None) => Ok(unchanged(&entry)),
            Ok(Some(report)) => self.finish(inner, name, "reloaded", Ok(report)),
            Err(e) => self.finish(inner, name, "reloaded", Err(e)),
        }
    }

    /// Goes back to the previous version, with the config it ran with; the state
    /// carries over.
    pub async fn rollback(&self, name: &str) -> Result<SwapReport, ControlError> {
        self.rollback_with(name, false).await
    }

    /// Goes back to the previous version, with the config it ran with; the state
    /// carries over unless `fresh_state`.
    pub async fn rollback_with(
        &self,
        name: &str,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("rollback", &name),
            move |this, mut inner| async move {
                let result = this.rollback_in(&mut inner, &name, fresh_state).await;
                (inner, result)
            },
        )
        .await
    }

    async fn rollback_in(
        &self,
        inner: &mut Inner,
        name: &str,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let mut next = inner.entry(name)?.clone();
        if !next.roll_back() {
            return Err(ControlError::Conflict(format!(
                "plugin `{name}` has no previous version to roll back to"
            )));
        }
        let result = self.apply(inner, next, !fresh_state).await;
        self.finish(inner, name, "rolled-back", result)
    }
}
