//! A kind's registry entry ([`KindEntry`]): what the CLI, the JS bindings, the benchmark and
//! the tests need to iterate over kinds without naming them. Above [`crate::attention`]
//! (its functions build [`Attention`] values), below the registry.

use std::fmt;
use std::sync::Arc;

use crate::attention::Attention;
use crate::error::Result;
use crate::shape::Shape;

use super::kind::AttentionKind;

/// A kind's entry in the registry: everything the CLI, the JS bindings, the benchmark and the
/// tests need to iterate over kinds without naming them.
pub struct KindEntry {
    /// Registry name.
    pub name: &'static str,
    /// Other names accepted by [`find`] (`"sb"`, `"stick_breaking"`).
    pub aliases: &'static [&'static str],
    /// One line for help texts.
    pub about: &'static str,
    /// The kind with default options.
    pub default: fn() -> Attention,
    /// Parses the kind's options from a JSON object (camelCase keys; unknown keys are errors).
    pub parse: fn(serde_json::Value) -> Result<Arc<dyn AttentionKind>>,
    /// Option sets that each take a distinct kernel path, for tests, sweeps and benchmarks.
    /// `shape` is the problem they run on (sinks need Hq).
    pub option_sets: fn(shape: &Shape) -> Vec<(String, Attention)>,
}

impl fmt::Debug for KindEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindEntry")
            .field("name", &self.name)
            .finish()
    }
}
