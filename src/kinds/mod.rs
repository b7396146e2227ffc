//! Attention kinds as units. Each kind is one folder here (options, GPU set-up, f64
//! reference, its option sets for tests) plus one folder of shaders, `shaders/<kind>/<pass>.wgsl`,
//! and one line in the registry below. The trait every kind implements is in `kind.rs`, the
//! registry entry in `entry.rs`; this file is only the registry. It knows shapes, the GPU
//! contract's flags and the references, never a `Context`.
//!
//! Adding a kind: see docs/ARCHITECTURE.md ("How to add a kind").

use crate::attention::Attention;
use crate::error::{Error, Result};

pub mod entry;
pub mod kind;
pub mod sigmoid;
pub mod softmax;
pub mod stick_breaking;
#[cfg(test)]
pub(crate) mod uniform;

pub use entry::KindEntry;
pub use kind::{AttentionKind, AuxOut, KindSetup, RefParts};

/// Every kind, in a fixed order. Registering a kind is one line here.
static REGISTRY: &[&KindEntry] = &[
    &softmax::ENTRY,
    &sigmoid::ENTRY,
    &stick_breaking::ENTRY,
    #[cfg(test)]
    &uniform::ENTRY,
];

/// Every registered kind.
pub fn registry() -> &'static [&'static KindEntry] {
    REGISTRY
}

/// The registered kind called `name` (or one of its aliases).
pub fn find(name: &str) -> Result<&'static KindEntry> {
    let n = name.trim().to_ascii_lowercase();
    REGISTRY
        .iter()
        .copied()
        .find(|e| e.name == n || e.aliases.contains(&n.as_str()))
        .ok_or_else(|| {
            Error::InvalidOption(format!(
                "unknown attention kind '{name}' (known: {})",
                names().join(", ")
            ))
        })
}

/// Names of the registered kinds.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}

impl Attention {
    /// Parses the JSON form: `{"kind": "softmax", "causal": true, "scale": 0.1, "window": 8,
    /// ...kind options}` (camelCase keys). Keys the kind does not have are errors.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(Error::InvalidOption(
                "attention options must be an object".into(),
            ));
        };
        let name = match map.remove("kind") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(Error::InvalidOption(format!(
                    "'kind' must be a string, got {other}"
                )))
            }
            None => return Err(Error::InvalidOption("'kind' is missing".into())),
        };
        let entry = find(&name)?;
        let take = |map: &mut serde_json::Map<String, serde_json::Value>, k: &str| {
            map.remove(k).filter(|v| !v.is_null())
        };
        let scale = take(&mut map, "scale")
            .map(|v| {
                v.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| Error::InvalidOption(format!("scale must be a number, got {v}")))
            })
            .transpose()?;
        let window = take(&mut map, "window")
            .map(|v| {
                v.as_u64()
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or_else(|| {
                        Error::InvalidOption(format!(
                            "window must be an integer from 1 to 2^32 - 1, got {v}"
                        ))
                    })
            })
            .transpose()?;
        let kind = (entry.parse)(serde_json::Value::Object(map))?;
        let mut a = Attention::of(kind).with_window(window);
        if let Some(sc) = scale {
            a = a.scale(sc);
        }
        a.validate()?;
        Ok(a)
    }
}
