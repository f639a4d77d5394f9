//! Which world a component implements, checked against the contract versions
//! this host speaks (`wasmeter:plugin@0.4.0`, and `@0.3.0`, `@0.2.0` and `@0.1.0` whose
//! components still load), with errors that name both sides.

use wasmeter_core::plugin::PluginKind;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package plugins are built against.
pub const PACKAGE: &str = "wasmeter:plugin";
/// The contract version new plugins are built against.
pub const VERSION: &str = Contract::CURRENT.version();

/// A version of the contract this host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `wasmeter:plugin@0.1.0`: one `diff` call per topic, no stream events.
    V0_1,
    /// `wasmeter:plugin@0.2.0`: one `diff` call per chunk, stream events.
    V0_2,
    /// `wasmeter:plugin@0.3.0`: collectors may declare series once and send points.
    V0_3,
    /// `wasmeter:plugin@0.4.0`: derived metrics take and give points of series
    /// declared once.
    V0_4,
}

impl Contract {
    /// The version new plugins are built against.
    pub const CURRENT: Contract = Contract::V0_4;
    /// Every version this host loads, newest first.
    pub const ALL: [Contract; 4] = [
        Contract::V0_4,
        Contract::V0_3,
        Contract::V0_2,
        Contract::V0_1,
    ];

    /// The version as written in the WIT package (`0.4.0`).
    pub const fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
            Contract::V0_4 => "0.4.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version())
    }
}

/// The fully qualified name of one of the current contract's interfaces.
pub fn interface_name(interface: &str) -> String {
    versioned_name(interface, Contract::CURRENT)
}

fn versioned_name(interface: &str, contract: Contract) -> String {
    format!("{PACKAGE}/{interface}@{}", contract.version())
}

/// The fully qualified name of a kind's world.
pub fn world_name(kind: PluginKind) -> String {
    interface_name(kind.world())
}

/// What a component exports, by name.
pub(crate) fn export_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// What a component imports, by name.
pub(crate) fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Determines the kind and contract version of a component from its exports,
/// checking the kind against `expected` if given. The error explains what was
/// expected and what was found.
pub(crate) fn detect_kind(
    exports: &[String],
    expected: Option<PluginKind>,
) -> Result<(PluginKind, Contract), String> {
    let has = |iface: &str, c: Contract| exports.iter().any(|e| *e == versioned_name(iface, c));
    let found = Contract::ALL.into_iter().find_map(|c| {
        PluginKind::ALL
            .into_iter()
            .find(|k| has(k.interface(), c) && has("plugin", c))
            .map(|k| (k, c))
    });
    let listed = if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (found, expected) {
        (Some((found, _)), Some(expected)) if found != expected => Err(format!(
            "expected a {expected} plugin (world `{}`, exporting `{}`), but this component is a {found} plugin (world `{}`); it exports {listed}",
            world_name(expected),
            interface_name(expected.interface()),
            world_name(found),
        )),
        (Some(found), _) => Ok(found),
        (None, expected) => {
            let wanted = match expected {
                Some(k) => format!(
                    "a {k} plugin (world `{}`) exporting `{}` and `{}`",
                    world_name(k),
                    interface_name(k.interface()),
                    interface_name("plugin"),
                ),
                None => format!(
                    "a wasmeter plugin exporting `{}` and one of {}",
                    interface_name("plugin"),
                    PluginKind::ALL
                        .iter()
                        .map(|k| format!("`{}`", interface_name(k.interface())))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let hint = if exports
                .iter()
                .any(|e| e.starts_with(&format!("{PACKAGE}/")))
            {
                let spoken = Contract::ALL
                    .iter()
                    .map(|c| format!("{PACKAGE}@{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    " (built against another version of the contract; this host speaks {spoken})"
                )
            } else {
                String::new()
            };
            Err(format!(
                "expected {wanted}; the component exports {listed}{hint}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_each_world() {
        for kind in PluginKind::ALL {
            for c in Contract::ALL {
                let exports = names(&[
                    &versioned_name("plugin", c),
                    &versioned_name(kind.interface(), c),
                ]);
                assert_eq!(detect_kind(&exports, None), Ok((kind, c)));
                assert_eq!(detect_kind(&exports, Some(kind)), Ok((kind, c)));
            }
        }
    }

    #[test]
    fn wrong_world_names_both_sides() {
        let exports = names(&["wasmeter:plugin/plugin@0.1.0", "wasmeter:plugin/diff@0.1.0"]);
        let err = detect_kind(&exports, Some(PluginKind::Collector)).unwrap_err();
        assert!(err.contains("expected a collector plugin (world `wasmeter:plugin/collector@0.4.0`, exporting `wasmeter:plugin/collect@0.4.0`)"), "{err}");
        assert!(err.contains("is a delta plugin"), "{err}");
    }

    #[test]
    fn other_version_is_called_out() {
        let exports = names(&[
            "wasmeter:plugin/plugin@0.9.0",
            "wasmeter:plugin/collect@0.9.0",
        ]);
        let err = detect_kind(&exports, Some(PluginKind::Collector)).unwrap_err();
        assert!(err.contains("`wasmeter:plugin/collect@0.9.0`"), "{err}");
        assert!(err.contains("another version of the contract; this host speaks wasmeter:plugin@0.4.0, wasmeter:plugin@0.3.0, wasmeter:plugin@0.2.0, wasmeter:plugin@0.1.0"), "{err}");
    }
}
