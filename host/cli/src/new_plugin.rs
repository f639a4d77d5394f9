//! `wasmeter new collector|delta|metric NAME [--lang rust|python|js]`: a plugin
//! project of its own, outside this repository, that builds with one command and
//! loads into a running host with one more (its README says both). Rust projects
//! use the checkout's SDK by path; Python and JavaScript ones are in [`guest`].

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

mod guest;

use guest::Guest;

/// The kind of plugin (its WIT world).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// Turns bytes of a source into topics and samples.
    Collector,
    /// Decides which field changes subscribers get.
    Delta,
    /// Derives samples from samples (a custom metric).
    Metric,
}

/// The language of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the wasmeter SDK (`plugins/sdk`).
    #[default]
    Rust,
    /// Python, built with componentize-py (the SDK of `plugins/python`).
    Python,
    /// JavaScript, built with componentize-js (the SDK of `plugins/js`).
    Js,
}

impl Lang {
    /// The command that builds a project of this language, in its directory.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python | Lang::Js => "./build.sh",
        }
    }

    fn guest(self) -> Option<Guest> {
        match self {
            Lang::Rust => None,
            Lang::Python => Some(Guest::Python),
            Lang::Js => Some(Guest::Js),
        }
    }
}

/// Where the SDK of the checkout this binary was built from is.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/sdk")
}

/// The versions the shipped plugins build with, so a new project resolves the same.
const LOCK: &str = include_str!("../../../plugins/Cargo.lock");
const CARGO_TOML: &str = include_str!("../templates/new/Cargo.toml.txt");

fn source(world: World) -> &'static str {
    match world {
        World::Collector => include_str!("../templates/new/collector.rs.txt"),
        World::Delta => include_str!("../templates/new/delta.rs.txt"),
        World::Metric => include_str!("../templates/new/metric.rs.txt"),
    }
}

fn world_name(world: World) -> &'static str {
    match world {
        World::Collector => "collector",
        World::Delta => "delta",
        World::Metric => "metric",
    }
}

/// `line-counter` -> `LineCounter`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A plugin name: a crate name that is also a valid component file stem.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "`{name}` is not a plugin name: start with a-z, then a-z, 0-9, `-` or `_`, at most 64 characters"
        );
    }
    Ok(())
}

/// Writes the project for `world` named `name` in `lang` into `dir` (default
/// `./NAME`), with the SDK at `sdk` (default: this checkout's `plugins/sdk`, or for
/// Python and JavaScript its `plugins/python` or `plugins/js`). Refuses a directory
/// that exists and is not empty.
pub fn create(
    world: World,
    name: &str,
    lang: Lang,
    dir: Option<&Path>,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let files = match lang.guest() {
        None => rust_files(world, name, sdk)?,
        Some(guest) => {
            let sdk = sdk
                .map(Path::to_path_buf)
                .unwrap_or_else(|| guest.default_sdk());
            let mut files = guest::files(guest, world, name, &type_name(name), &sdk)?;
            let load = load_section(world, name, &format!("{}.wasm", name.replace('-', "_")));
            for (path, text, _) in &mut files {
                if path == Path::new("README.md") {
                    *text = String::from_utf8_lossy(text)
                        .replace("{{LOAD}}", &load)
                        .into_bytes();
                }
            }
            files
        }
    };
    for (path, bytes, executable) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
    }
    Ok(dir)
}

/// The files of a Rust project: (path, contents, executable).
fn rust_files(
    world: World,
    name: &str,
    sdk: Option<&Path>,
) -> anyhow::Result<Vec<(PathBuf, Vec<u8>, bool)>> {
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(default_sdk);
    let sdk = std::fs::canonicalize(&sdk)
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "the wasmeter SDK is not at {}: pass --sdk <a wasmeter checkout>/plugins/sdk",
                sdk.display()
            )
        })?;
    let crate_name = name.to_string();
    let fill = |template: &str| {
        template
            .replace("{{CRATE}}", &crate_name)
            .replace("{{TYPE}}", &type_name(name))
            .replace("{{WORLD}}", world_name(world))
            .replace("{{PREFIX}}", &crate_name)
            .replace("{{SDK}}", &sdk.display().to_string())
    };
    let file = crate_name.replace('-', "_");
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("Cargo.lock", LOCK.to_string()),
        ("src/lib.rs", fill(source(world))),
        (".gitignore", "/target\n".to_string()),
        ("README.md", readme(world, &crate_name, &file)),
    ];
    Ok(files
        .into_iter()
        .map(|(path, text)| (PathBuf::from(path), text.into_bytes(), false))
        .collect())
}

/// The README's section on loading the component at `wasm` (a path relative to
/// the project) of the plugin `name`.
fn load_section(world: World, name: &str, wasm: &str) -> String {
    let file = name.replace('-', "_");
    match world {
        World::Metric | World::Delta => format!(
            "Into a running host (the demo: `wasmeter serve`), joining its `trades` pipeline:\n\n\
             ```sh\nwasmeter plugin load {name} {wasm} --pipeline trades\n```\n\n\
             A metric's series are topics too: `metrics/<name>/<label values>`, e.g. \
             `wasmeter tail 'metrics/trade_price_max/*'` for this template's output."
        ),
        World::Collector => format!(
            "A collector reads a source: name it in a pipeline of your config and start \
             the host with it:\n\n```toml\n[plugins.{file}]\npath = \"{wasm}\"\n\n\
             [sources.prices]\ntype = \"file\"\ninclude = [\"prices/*.csv\"]\n\n\
             [pipelines.{file}]\nsources = [\"prices\"]\ncollector = \"{file}\"\n\
             topics = [\"{name}\"]   # the prefixes it may publish\n```\n\n\
             then `wasmeter serve --config wasmeter.toml` and append `BTC,64000.5` lines to \
             `prices/a.csv`; `wasmeter tail '{name}/*'` shows the topics (the prefix is \
             the config's `topic_prefix`, default `{name}`)."
        ),
    }
}

/// The project's README: what it is, how to build it, how to load it.
fn readme(world: World, name: &str, file: &str) -> String {
    let wasm = format!("target/wasm32-wasip2/release/{file}.wasm");
    let load = load_section(world, name, &wasm);
    format!(
        "# {name}\n\nA wasmeter {world} plugin (see the plugin guide, `plugins/README.md` of \
         wasmeter).\n\n## Build\n\n```sh\nrustup target add wasm32-wasip2   # once\n\
         cargo build --release --target wasm32-wasip2\nwasmeter check-plugin {wasm}\n```\n\n\
         ## Load\n\n{load}\n",
        world = world_name(world)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_typed() {
        assert_eq!(type_name("price-max"), "PriceMax");
        assert_eq!(type_name("a_b"), "AB");
        for bad in ["", "1x", "Up", "a b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("line-counter_2").unwrap();
    }

    #[test]
    fn a_project_is_written_and_an_existing_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = default_sdk();
        let out = create(
            World::Metric,
            "price-max",
            Lang::Rust,
            Some(&dir.path().join("p")),
            Some(&sdk),
        )
        .unwrap();
        let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
        assert!(lib.contains("struct PriceMax") && lib.contains("export_metric!(PriceMax)"));
        let toml = std::fs::read_to_string(out.join("Cargo.toml")).unwrap();
        assert!(toml.contains("name = \"price-max\""), "{toml}");
        assert!(!toml.contains("{{"), "{toml}");
        let again = create(
            World::Metric,
            "price-max",
            Lang::Rust,
            Some(&out),
            Some(&sdk),
        );
        assert!(again.unwrap_err().to_string().contains("not empty"));
        let nowhere = create(
            World::Delta,
            "d",
            Lang::Rust,
            Some(&dir.path().join("d")),
            Some(Path::new("/nonexistent")),
        );
        assert!(nowhere.unwrap_err().to_string().contains("--sdk"));
    }
}
