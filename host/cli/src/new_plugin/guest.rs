//! `wasmeter new ... --lang python|js`: a guest plugin project. It holds a copy of the
//! checkout's guest SDK and WIT (componentize-js reads modules only below its working
//! directory, so a JavaScript project cannot import the SDK from the checkout; Python
//! projects do the same so both build alike and stay buildable as the checkout moves
//! on) and a `build.sh` that builds through the checkout's
//! `scripts/build-guest-plugins.sh --project`, which installs the toolchain once and
//! caches the component by a hash of the project's sources.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{World, world_name};

/// A guest language: where its SDK is in a checkout and what a project holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    /// componentize-py; the SDK is `plugins/python/wasmeter_guest`.
    Python,
    /// componentize-js; the SDK is `plugins/js/wasmeter-guest`.
    Js,
}

impl Guest {
    /// The argument `scripts/build-guest-plugins.sh --project` takes.
    fn id(self) -> &'static str {
        match self {
            Guest::Python => "python",
            Guest::Js => "js",
        }
    }

    /// The SDK's directory name, in the checkout's SDK dir and in a project.
    fn package(self) -> &'static str {
        match self {
            Guest::Python => "wasmeter_guest",
            Guest::Js => "wasmeter-guest",
        }
    }

    fn app(self) -> &'static str {
        match self {
            Guest::Python => "app.py",
            Guest::Js => "app.js",
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Guest::Python => "componentize-py",
            Guest::Js => "componentize-js",
        }
    }

    /// README facts: the language's name, where the toolchain goes, the output's size.
    fn facts(self) -> [(&'static str, &'static str); 3] {
        match self {
            Guest::Python => [
                ("{{LANGUAGE}}", "Python"),
                (
                    "{{INSTALL}}",
                    "with pip into a venv under `~/.cache/wasmeter/guest-py/`; needs python3 with venv",
                ),
                ("{{SIZE}}", "~18 MB, CPython"),
            ],
            Guest::Js => [
                ("{{LANGUAGE}}", "JavaScript"),
                (
                    "{{INSTALL}}",
                    "with `npm ci` into the checkout's `plugins/js/node_modules`; needs node and npm",
                ),
                ("{{SIZE}}", "~12 MB, SpiderMonkey"),
            ],
        }
    }

    /// The default SDK directory: `plugins/python` or `plugins/js` of the checkout
    /// this binary was built from.
    pub fn default_sdk(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plugins")
            .join(self.id())
    }

    fn source(self, world: World) -> &'static str {
        match (self, world) {
            (Guest::Python, World::Collector) => {
                include_str!("../../templates/new/python/collector.py.txt")
            }
            (Guest::Python, World::Delta) => {
                include_str!("../../templates/new/python/delta.py.txt")
            }
            (Guest::Python, World::Metric) => {
                include_str!("../../templates/new/python/metric.py.txt")
            }
            (Guest::Js, World::Collector) => {
                include_str!("../../templates/new/js/collector.js.txt")
            }
            (Guest::Js, World::Delta) => include_str!("../../templates/new/js/delta.js.txt"),
            (Guest::Js, World::Metric) => include_str!("../../templates/new/js/metric.js.txt"),
        }
    }
}

const BUILD_SH: &str = include_str!("../../templates/new/guest/build.sh.txt");
const README: &str = include_str!("../../templates/new/guest/README.md.txt");

/// The checkout that holds the guest SDK at `sdk` (its `plugins/<lang>`), checked to
/// have what a project copies and its build script runs.
fn checkout_of(guest: Guest, sdk: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let hint = || {
        format!(
            "the wasmeter {} SDK is not at {}: pass --sdk <a wasmeter checkout>/plugins/{}",
            guest.id(),
            sdk.display(),
            guest.id()
        )
    };
    let sdk = std::fs::canonicalize(sdk).with_context(hint)?;
    if !sdk.join(guest.package()).is_dir() {
        bail!("{} (no {}/ in it)", hint(), guest.package());
    }
    let checkout = sdk
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .with_context(hint)?;
    for needed in ["scripts/build-guest-plugins.sh", "wit/worlds.wit"] {
        if !checkout.join(needed).is_file() {
            bail!(
                "{} is not a wasmeter checkout: {needed} is missing (the project builds with it)",
                checkout.display()
            );
        }
    }
    Ok((checkout, sdk))
}

/// The files of `dir` whose names end in `ext`, sorted (no subdirectories).
fn files_with(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The files of a `guest` project for `world` named `name`, with the SDK of the checkout
/// whose `plugins/<lang>` is `sdk`: (path in the project, contents, executable).
pub fn files(
    guest: Guest,
    world: World,
    name: &str,
    type_name: &str,
    sdk: &Path,
) -> anyhow::Result<Vec<(PathBuf, Vec<u8>, bool)>> {
    let (checkout, sdk) = checkout_of(guest, sdk)?;
    let file = name.replace('-', "_");
    let fill = |template: &str| {
        let text = guest
            .facts()
            .iter()
            .fold(template.to_string(), |t, (key, value)| {
                t.replace(key, value)
            });
        text.replace("{{NAME}}", name)
            .replace("{{SDK}}", guest.package())
            .replace("{{TYPE}}", type_name)
            .replace("{{FILE}}", &file)
            .replace("{{WORLD}}", world_name(world))
            .replace("{{LANG}}", guest.id())
            .replace("{{APP}}", guest.app())
            .replace("{{TOOL}}", guest.tool())
            .replace("{{CHECKOUT}}", &checkout.display().to_string())
    };
    let ignore = match guest {
        Guest::Python => "*.wasm\n__pycache__/\n",
        Guest::Js => "*.wasm\nnode_modules/\n",
    };
    let mut out = vec![
        (
            PathBuf::from(guest.app()),
            fill(guest.source(world)).into_bytes(),
            false,
        ),
        (PathBuf::from("build.sh"), fill(BUILD_SH).into_bytes(), true),
        (PathBuf::from("README.md"), fill(README).into_bytes(), false),
        (
            PathBuf::from(".gitignore"),
            ignore.as_bytes().to_vec(),
            false,
        ),
    ];
    let ext = match guest {
        Guest::Python => "py",
        Guest::Js => "js",
    };
    for (from, to, ext) in [
        (
            sdk.join(guest.package()),
            PathBuf::from(guest.package()),
            ext,
        ),
        (checkout.join("wit"), PathBuf::from("wit"), "wit"),
    ] {
        for path in files_with(&from, ext)? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            out.push((to.join(path.file_name().unwrap_or_default()), bytes, false));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_holds_its_app_sdk_wit_and_build_script() {
        for guest in [Guest::Python, Guest::Js] {
            let files = files(
                guest,
                World::Metric,
                "price-max",
                "PriceMax",
                &guest.default_sdk(),
            )
            .unwrap();
            let find = |p: &str| files.iter().find(|(path, ..)| path == Path::new(p));
            let (_, app, _) = find(guest.app()).unwrap();
            let app = String::from_utf8_lossy(app);
            assert!(
                app.contains("class PriceMax") && !app.contains("{{"),
                "{app}"
            );
            let (_, build, exec) = find("build.sh").unwrap();
            let build = String::from_utf8_lossy(build);
            assert!(
                *exec
                    && build.contains(&format!("--project {} metric . price_max.wasm", guest.id())),
                "{build}"
            );
            assert!(find("wit/worlds.wit").is_some() && find("wit/types.wit").is_some());
            let index = match guest {
                Guest::Python => "wasmeter_guest/__init__.py",
                Guest::Js => "wasmeter-guest/index.js",
            };
            assert!(find(index).is_some(), "{index}");
        }
        let err = files(Guest::Js, World::Delta, "d", "D", Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("--sdk"), "{err}");
        let err = files(
            Guest::Python,
            World::Delta,
            "d",
            "D",
            &Guest::Js.default_sdk(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no wasmeter_guest/"), "{err}");
    }
}
