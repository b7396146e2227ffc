//! The unit every kind implements: the [`AttentionKind`] trait and what it hands the passes
//! ([`KindSetup`], [`AuxOut`]). It sits below [`crate::attention::Attention`], which holds a
//! kind, and below the registry (`kinds/mod.rs`), which lists them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pass::PassId;
use crate::reference::math::{Inputs, Precision};
use crate::shape::Shape;

/// The per-row output a kind writes beside `o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxOut {
    /// None (sigmoid).
    None,
    /// Log-sum-exp per row (softmax).
    Lse,
    /// The stick left per row (stick-breaking).
    Rem,
}

/// What a kind hands the passes for one call: the kernel parameters that depend on its
/// options (see `crate::contract::Params`).
#[derive(Debug, Clone, PartialEq)]
pub struct KindSetup {
    /// `FLAG_*` bits of the GPU contract.
    pub flags: u32,
    /// Sigmoid bias b (0 for other kinds).
    pub bias: f32,
    /// 1 when key j = p_i is excluded (stick-breaking default), else 0.
    pub self_excl: u32,
    /// Per-query-head sink logits (softmax), bound to the `sinks` binding.
    pub sinks: Option<Vec<f32>>,
    /// The per-row output.
    pub aux: AuxOut,
}

/// Dense reference weights A [units, Tq, Tk] and the per-row output (lse or rem), in f64.
pub type RefParts = (Vec<f64>, Option<Vec<f64>>);

/// One attention mechanism with its options. Implemented by the option structs of the kinds
/// in this crate ([`super::softmax::SoftmaxOptions`], [`super::sigmoid::SigmoidOptions`],
/// [`super::stick_breaking::StickBreakingOptions`]); an [`crate::Attention`] holds one.
pub trait AttentionKind: fmt::Debug + Send + Sync + 'static {
    /// The kind's registry name (`"softmax"`, `"sigmoid"`, `"stick-breaking"`).
    fn name(&self) -> &'static str;
    /// The kind's WGSL kernel of `pass` (`shaders/<kind>/<pass>.wgsl`), or `None` if the kind
    /// has no such pass.
    fn shader(&self, pass: PassId) -> Option<&'static str>;
    /// The kind's hooks for the `coopmat2` forward kernel (`shaders/<kind>/forward_coop2.wgsl`,
    /// assembled after `shaders/common/tile_coop2.wgsl`), or `None`: on a device that runs that
    /// variant, the kind then takes the `coopmat` forward kernel.
    fn forward_coop2(&self) -> Option<&'static str> {
        None
    }
    /// Do this call's weights keep their precision as unscaled f16, the tensor cores' P of the
    /// `coopmat` forward kernel (`shaders/common/tile_coop.wgsl`)? `false` where a row's
    /// weights can all lie below f16's range while its output does not: such calls take the
    /// subgroup variant instead (f32 arithmetic on f16 tensors). `coopmat2` scales P per row
    /// and needs no such exception.
    fn coop_weights_fit_f16(&self) -> bool {
        true
    }
    /// The kind's kernel of the subgroup decode partial pass: its hook
    /// `shaders/<kind>/decode_sg.wgsl` then its `merge.wgsl`, assembled after
    /// `shaders/common/decode_partial_sg.wgsl`; or `None`: the kind's decoding then always takes
    /// the portable partial kernel ([`AttentionKind::shader`] of [`PassId::DecodePartial`]).
    fn decode_subgroup(&self) -> Option<&'static str> {
        None
    }
    /// Checks the options against `shape` and returns the kernel parameters.
    fn setup(&self, shape: &Shape) -> Result<KindSetup>;
    /// The reference: dense weights and per-row output, following SPEC.md literally, computed
    /// in `precision` (f64 is the reference; f32 is the "straightforward f32 computation" of
    /// SPEC.md section 6 that sets the error floor of ill-conditioned cases).
    fn reference(&self, x: &Inputs, precision: Precision) -> Result<RefParts>;
    /// Does row i's output read v_j? The keys of S(i) (or V(i)), plus any other value the
    /// kind adds (stick-breaking's remainder to the current token). The reference's o = A v
    /// reads exactly these, so a NaN in a value a row reads propagates even at weight 0, and
    /// one it does not read never reaches it.
    fn reads_value(&self, x: &Inputs, i: usize, j: usize) -> bool;
    /// The same options with the causal mask set, where the kind has one (`None`: it has not;
    /// stick-breaking is causal by definition).
    fn with_causal(&self, _causal: bool) -> Option<Arc<dyn AttentionKind>> {
        None
    }
    /// The options as a JSON object (the form [`KindEntry::parse`] reads).
    fn to_json(&self) -> serde_json::Value;
    /// For downcasting in builders.
    fn as_any(&self) -> &dyn Any;
    /// Equality across kinds.
    fn dyn_eq(&self, other: &dyn AttentionKind) -> bool;
}

/// Implements the boilerplate methods of [`AttentionKind`] for an options type.
macro_rules! kind_boilerplate {
    () => {
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn dyn_eq(&self, other: &dyn $crate::kinds::kind::AttentionKind) -> bool {
            other
                .as_any()
                .downcast_ref::<Self>()
                .is_some_and(|o| o == self)
        }
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    };
}
pub(crate) use kind_boilerplate;

/// Parses a kind's options with serde, strictly: a key the kind does not have is an error
/// that names the kind.
pub(crate) fn parse_strict<T: serde::de::DeserializeOwned + AttentionKind>(
    kind: &str,
    value: serde_json::Value,
) -> Result<Arc<dyn AttentionKind>> {
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        v => v,
    };
    serde_json::from_value::<T>(value)
        .map(|o| Arc::new(o) as Arc<dyn AttentionKind>)
        .map_err(|e| Error::InvalidOption(format!("{kind} options: {e}")))
}

/// Checks sink logits: one finite value per query head.
pub(crate) fn check_per_head(what: &str, values: &[f32], shape: &Shape) -> Result<()> {
    if values.len() != shape.q_heads {
        return Err(Error::InvalidOption(format!(
            "{what}: {} values for {} query heads",
            values.len(),
            shape.q_heads
        )));
    }
    if let Some(x) = values.iter().find(|x| !x.is_finite()) {
        return Err(Error::InvalidOption(format!("{what}: {x} is not finite")));
    }
    Ok(())
}
