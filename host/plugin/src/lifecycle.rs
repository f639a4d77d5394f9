//! The calls every world exports (`wasmeter:plugin/plugin`: describe, init,
//! export/import state), as a sealed trait implemented per world by `lifecycle!`.

use std::future::Future;
use std::pin::Pin;

use wasmeter_core::plugin::PluginKind;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::bindings::types;
use crate::compiled::{Compiled, LoadedPlugin};
use crate::sandbox::StoreData;
use crate::world::Contract;

pub(crate) type GuestFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

pub(crate) mod sealed {
    use super::*;

    /// The calls every world exports (`wasmeter:plugin/plugin`), per world.
    pub trait Lifecycle: Sized + Send + Sync + 'static {
        type Pre: Clone + Send + Sync + 'static;
        type Bindings: Send + Sync + 'static;
        fn pre(pre: InstancePre<StoreData>, contract: Contract) -> wasmtime::Result<Self::Pre>;
        fn instantiate<'a>(
            pre: &'a Self::Pre,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, Self::Bindings>;
        fn describe<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, types::PluginInfo>;
        #[allow(clippy::ptr_arg, reason = "the generated binding takes `&Vec`")]
        fn init<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
            config: &'a Vec<(String, String)>,
        ) -> GuestFuture<'a, Result<(), String>>;
        fn export_state<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, Option<Vec<u8>>>;
        fn import_state<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
            state: &'a [u8],
        ) -> GuestFuture<'a, Result<(), String>>;
    }
}

pub(crate) use sealed::Lifecycle;

/// A WIT world a plugin implements: [`crate::CollectorWorld`], [`crate::DeltaWorld`]
/// or [`crate::MetricWorld`].
pub trait World: sealed::Lifecycle {
    /// The kind of plugin of this world.
    const KIND: PluginKind;

    /// The typed plugin if `loaded` is of this world.
    fn from_loaded(loaded: LoadedPlugin) -> Option<Compiled<Self>>;

    #[doc(hidden)]
    fn wrap(compiled: Compiled<Self>) -> LoadedPlugin;
}

/// Calls the same life-cycle function on the bindings of any contract version:
/// `by_version!(bindings, |b| future)`, whose output is the same type for all.
macro_rules! by_version {
    ($bindings:expr, |$b:ident| $call:expr) => {
        match $bindings {
            $crate::bindings::ByVersion::V1($b) => Box::pin($call),
            $crate::bindings::ByVersion::V2($b) => Box::pin($call),
            $crate::bindings::ByVersion::V3($b) => Box::pin($call),
            $crate::bindings::ByVersion::V4($b) => Box::pin($call),
        }
    };
}

pub(crate) use by_version;

/// Implements [`sealed::Lifecycle`] for a world's generated bindings, of every
/// contract version.
macro_rules! lifecycle {
    ($world:ident, $kind:ident, $module:ident, $bindings:ident, $pre:ident) => {
        impl $crate::lifecycle::sealed::Lifecycle for $world {
            type Pre = $crate::bindings::ByVersion<
                $crate::bindings::v1::$module::$pre<$crate::sandbox::StoreData>,
                $crate::bindings::v2::$module::$pre<$crate::sandbox::StoreData>,
                $crate::bindings::v3::$module::$pre<$crate::sandbox::StoreData>,
                $crate::bindings::v4::$module::$pre<$crate::sandbox::StoreData>,
            >;
            type Bindings = $crate::bindings::ByVersion<
                $crate::bindings::v1::$module::$bindings,
                $crate::bindings::v2::$module::$bindings,
                $crate::bindings::v3::$module::$bindings,
                $crate::bindings::v4::$module::$bindings,
            >;

            fn pre(
                pre: wasmtime::component::InstancePre<$crate::sandbox::StoreData>,
                contract: $crate::world::Contract,
            ) -> wasmtime::Result<Self::Pre> {
                Ok(match contract {
                    $crate::world::Contract::V0_1 => $crate::bindings::ByVersion::V1(
                        $crate::bindings::v1::$module::$pre::new(pre)?,
                    ),
                    $crate::world::Contract::V0_2 => $crate::bindings::ByVersion::V2(
                        $crate::bindings::v2::$module::$pre::new(pre)?,
                    ),
                    $crate::world::Contract::V0_3 => $crate::bindings::ByVersion::V3(
                        $crate::bindings::v3::$module::$pre::new(pre)?,
                    ),
                    $crate::world::Contract::V0_4 => $crate::bindings::ByVersion::V4(
                        $crate::bindings::v4::$module::$pre::new(pre)?,
                    ),
                })
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::lifecycle::GuestFuture<'a, Self::Bindings> {
                match pre {
                    $crate::bindings::ByVersion::V1(pre) => Box::pin(async move {
                        pre.instantiate_async(store)
                            .await
                            .map($crate::bindings::ByVersion::V1)
                    }),
                    $crate::bindings::ByVersion::V2(pre) => Box::pin(async move {
                        pre.instantiate_async(store)
                            .await
                            .map($crate::bindings::ByVersion::V2)
                    }),
                    $crate::bindings::ByVersion::V3(pre) => Box::pin(async move {
                        pre.instantiate_async(store)
                            .await
                            .map($crate::bindings::ByVersion::V3)
                    }),
                    $crate::bindings::ByVersion::V4(pre) => Box::pin(async move {
                        pre.instantiate_async(store)
                            .await
                            .map($crate::bindings::ByVersion::V4)
                    }),
                }
            }

            fn describe<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::lifecycle::GuestFuture<'a, $crate::bindings::types::PluginInfo> {
                match b {
                    $crate::bindings::ByVersion::V1(b) => Box::pin(async move {
                        b.wasmeter_plugin_plugin()
                            .call_describe(store)
                            .await
                            .map($crate::kinds::info_from_v1)
                    }),
                    $crate::bindings::ByVersion::V2(b) => Box::pin(async move {
                        b.wasmeter_plugin_plugin()
                            .call_describe(store)
                            .await
                            .map($crate::kinds::info_from_v2)
                    }),
                    $crate::bindings::ByVersion::V3(b) => Box::pin(async move {
                        b.wasmeter_plugin_plugin()
                            .call_describe(store)
                            .await
                            .map($crate::kinds::info_from_v3)
                    }),
                    $crate::bindings::ByVersion::V4(b) => {
                        Box::pin(b.wasmeter_plugin_plugin().call_describe(store))
                    }
                }
            }

            fn init<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
                config: &'a Vec<(String, String)>,
            ) -> $crate::lifecycle::GuestFuture<'a, Result<(), String>> {
                $crate::lifecycle::by_version!(b, |b| b
                    .wasmeter_plugin_plugin()
                    .call_init(store, config))
            }

            fn export_state<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::lifecycle::GuestFuture<'a, Option<Vec<u8>>> {
                $crate::lifecycle::by_version!(b, |b| b
                    .wasmeter_plugin_plugin()
                    .call_export_state(store))
            }

            fn import_state<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
                state: &'a [u8],
            ) -> $crate::lifecycle::GuestFuture<'a, Result<(), String>> {
                $crate::lifecycle::by_version!(b, |b| b
                    .wasmeter_plugin_plugin()
                    .call_import_state(store, state))
            }
        }

        impl $crate::lifecycle::World for $world {
            const KIND: wasmeter_core::plugin::PluginKind =
                wasmeter_core::plugin::PluginKind::$kind;

            fn from_loaded(
                loaded: $crate::compiled::LoadedPlugin,
            ) -> Option<$crate::compiled::Compiled<Self>> {
                match loaded {
                    $crate::compiled::LoadedPlugin::$kind(c) => Some(c),
                    _ => None,
                }
            }

            fn wrap(compiled: $crate::compiled::Compiled<Self>) -> $crate::compiled::LoadedPlugin {
                $crate::compiled::LoadedPlugin::$kind(compiled)
            }
        }
    };
}

pub(crate) use lifecycle;
