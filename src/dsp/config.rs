//! The configuration of one processor node as a recipe wrote it.
//!
//! A plain tree of values (numbers, booleans, strings, lists, tables) with the recipe location it
//! came from. Builders take the options they know with the `take_*` methods; whatever is left at
//! the end is an unknown option and is reported with the closest valid name.

use std::collections::BTreeMap;

/// One value in a node's configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Text(String),
    /// A list (a Lua sequence).
    List(Vec<ConfigValue>),
    /// A table with string keys.
    Table(ProcessorConfig),
}

impl ConfigValue {
    /// A short name of the value's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ConfigValue::Number(_) => "a number",
            ConfigValue::Bool(_) => "a boolean",
            ConfigValue::Text(_) => "a string",
            ConfigValue::List(_) => "a list",
            ConfigValue::Table(_) => "a table",
        }
    }
}

/// A node's options, keyed by name, in a deterministic (sorted) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessorConfig {
    /// The options.
    pub entries: BTreeMap<String, ConfigValue>,
}

impl ProcessorConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an option (builder style, for code and tests).
    pub fn with(mut self, key: &str, value: ConfigValue) -> Self {
        self.entries.insert(key.to_string(), value);
        self
    }

    /// Adds a numeric option (builder style).
    pub fn num(self, key: &str, value: f64) -> Self {
        self.with(key, ConfigValue::Number(value))
    }

    /// Adds a string option (builder style).
    pub fn text(self, key: &str, value: &str) -> Self {
        self.with(key, ConfigValue::Text(value.to_string()))
    }

    /// Removes and returns an option.
    pub fn take(&mut self, key: &str) -> Option<ConfigValue> {
        self.entries.remove(key)
    }

    /// Removes a numeric option, or returns `default` when absent.
    pub fn take_number(&mut self, key: &str, default: f64) -> Result<f64, String> {
        match self.take(key) {
            None => Ok(default),
            Some(ConfigValue::Number(v)) => Ok(v),
            Some(ConfigValue::Bool(b)) => Ok(if b { 1.0 } else { 0.0 }),
            Some(other) => Err(format!(
                "`{key}` must be a number, not {}",
                other.type_name()
            )),
        }
    }

    /// A numeric option's value without taking it, or `default` when absent: for an option that
    /// is also a parameter (the registry takes it later) or that a build only looks at.
    pub fn peek_number(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.entries.get(key) {
            None => Ok(default),
            Some(ConfigValue::Number(v)) => Ok(*v),
            Some(other) => Err(format!(
                "`{key}` must be a number, not {}",
                other.type_name()
            )),
        }
    }

    /// Removes a boolean option, or returns `default` when absent.
    pub fn take_bool(&mut self, key: &str, default: bool) -> Result<bool, String> {
        match self.take(key) {
            None => Ok(default),
            Some(ConfigValue::Bool(b)) => Ok(b),
            Some(other) => Err(format!(
                "`{key}` must be true or false, not {}",
                other.type_name()
            )),
        }
    }

    /// Removes a string option that must be one of `choices`, or returns `default` when absent.
    pub fn take_choice(
        &mut self,
        key: &str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, String> {
        match self.take(key) {
            None => Ok(default),
            Some(ConfigValue::Text(s)) => {
                choices.iter().copied().find(|c| *c == s).ok_or_else(|| {
                    format!(
                        "`{key}` must be one of {}, not \"{s}\"",
                        choices
                            .iter()
                            .map(|c| format!("\"{c}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            Some(other) => Err(format!(
                "`{key}` must be a string, not {}",
                other.type_name()
            )),
        }
    }

    /// Removes a list option (absent: empty).
    pub fn take_list(&mut self, key: &str) -> Result<Vec<ConfigValue>, String> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(ConfigValue::List(v)) => Ok(v),
            Some(ConfigValue::Table(t)) if t.entries.is_empty() => Ok(Vec::new()),
            Some(other) => Err(format!("`{key}` must be a list, not {}", other.type_name())),
        }
    }

    /// Option names still present.
    pub fn remaining_keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| k.as_str())
    }
}
