//! A plugin's configuration: the `[plugins.NAME.config]` table of the host's config,
//! flattened to dotted keys with string values (`field.price = "p"`).

use std::any::type_name;
use std::fmt::Display;
use std::str::FromStr;

/// Key/value configuration handed to [`Plugin::init`](crate::Plugin::init).
///
/// Keys are dotted paths; values are strings. If a key appears more than once, the last
/// value wins. Values are trimmed of surrounding whitespace by the typed accessors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration from key/value pairs.
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Config { entries }
    }

    /// A configuration from borrowed pairs (handy in tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Config::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The plugin's configuration as the host holds it (the `host.config` import). Useful
    /// in [`Plugin::info`](crate::Plugin::info), which runs before `init`. Outside
    /// WebAssembly (native unit tests) it is empty.
    pub fn from_host() -> Self {
        #[cfg(target_arch = "wasm32")]
        {
            Config::new(crate::bindings::collector::wasmeter::plugin::host::config())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Config::default()
        }
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The raw value of `key`, or `default` if it is not set.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key`, or an error naming the key if it is missing or blank.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(format!("config `{key}`: must not be empty")),
            None => Err(format!("config `{key}`: missing (required)")),
        }
    }

    /// The value of `key` parsed as `T` (after trimming); `Ok(None)` if it is not set.
    ///
    /// The error names the key, the bad value and the expected type:
    /// ``config `alpha`: `abc` is not a valid f64 (invalid float literal)``.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => raw.trim().parse::<T>().map(Some).map_err(|e| {
                format!(
                    "config `{key}`: `{raw}` is not a valid {} ({e})",
                    short_type_name::<T>()
                )
            }),
        }
    }

    /// Like [`parse`](Config::parse) but with a default for a missing key.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// Like [`parse`](Config::parse) for a required key.
    pub fn parse_required<T>(&self, key: &str) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.require(key)?;
        Ok(self.parse(key)?.expect("checked by require"))
    }

    /// Parses `key` like [`parse`](Config::parse) and checks the value with `valid`.
    ///
    /// A missing key gives `default`, or an error if `default` is `None` (required key).
    /// An invalid value gives ``config `key`: `raw` must be <requirement>``, quoting the
    /// configured text (so plugins need not format numbers themselves).
    ///
    /// ```
    /// # use wasmeter_sdk::Config;
    /// let c = Config::from_pairs(&[("alpha", "1.5")]);
    /// let e = c.parse_checked("alpha", Some(0.2f64), |a| *a > 0.0 && *a <= 1.0, "in (0, 1]");
    /// assert_eq!(e.unwrap_err(), "config `alpha`: `1.5` must be in (0, 1]");
    /// ```
    pub fn parse_checked<T>(
        &self,
        key: &str,
        default: Option<T>,
        valid: impl FnOnce(&T) -> bool,
        requirement: &str,
    ) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        let value = match (self.parse(key)?, default) {
            (Some(v), _) => v,
            (None, Some(d)) => return Ok(d),
            (None, None) => return Err(self.require(key).unwrap_err()),
        };
        if valid(&value) {
            Ok(value)
        } else {
            let raw = self.get(key).unwrap_or_default().trim();
            Err(format!("config `{key}`: `{raw}` must be {requirement}"))
        }
    }

    /// A comma-separated list: items trimmed, empty items dropped. `None` if not set.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    }

    /// All entries, in the order the host gave them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True if the configuration has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `f64` rather than `core::primitive::f64`, `Foo` rather than `my_crate::Foo`.
fn short_type_name<T>() -> &'static str {
    let full = type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access() {
        let c = Config::from_pairs(&[("alpha", " 0.5 "), ("n", "x"), ("alpha", "0.25")]);
        assert_eq!(c.parse::<f64>("alpha").unwrap(), Some(0.25));
        assert_eq!(c.parse::<f64>("missing").unwrap(), None);
        assert_eq!(c.parse_or("missing", 3u32).unwrap(), 3);
        let e = c.parse::<u32>("n").unwrap_err();
        assert!(
            e.contains("`n`") && e.contains("`x`") && e.contains("u32"),
            "{e}"
        );
        assert!(c.require("nope").unwrap_err().contains("`nope`"));
        assert_eq!(c.get_or("nope", "d"), "d");
        let ok = c.parse_checked("alpha", None, |a: &f64| *a > 0.0, "> 0");
        assert_eq!(ok.unwrap(), 0.25);
        let missing = c.parse_checked("nope", None, |_: &f64| true, "");
        assert!(missing.unwrap_err().contains("missing"));
    }

    #[test]
    fn lists() {
        let c = Config::from_pairs(&[("m", " a, b,,c ")]);
        assert_eq!(c.list("m").unwrap(), vec!["a", "b", "c"]);
        assert!(c.list("x").is_none());
    }
}
