//! One attention call's parameters ([`Attention`]: a kind with its options, the scale and the
//! window) and the outputs of a forward call ([`Output`], [`HostOutput`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kinds::kind::{AttentionKind, AuxOut};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// One attention call's parameters.
///
/// Build with [`Attention::softmax`], [`Attention::sigmoid`] or [`Attention::stick_breaking`]
/// and the builder methods (`causal`, `scale`, `window`, `sinks`, `bias`, `normalize`,
/// `attend_current`, `remainder`), or wrap options with [`Attention::new`]. A builder method
/// that does not apply to the kind (`.causal(true)` on stick-breaking, `.sinks(..)` on
/// sigmoid) is not ignored: every call with that `Attention` fails with
/// [`Error::InvalidOption`] naming the option.
#[derive(Debug, Clone)]
pub struct Attention {
    kind: Arc<dyn AttentionKind>,
    scale: Option<f32>,
    window: Option<u32>,
    misuse: Option<String>,
}

impl PartialEq for Attention {
    fn eq(&self, other: &Self) -> bool {
        self.kind.dyn_eq(other.kind.as_ref())
            && self.scale == other.scale
            && self.window == other.window
            && self.misuse == other.misuse
    }
}

impl Attention {
    /// Attention of the kind `options` belong to, default scale, no window.
    pub fn new(options: impl AttentionKind) -> Self {
        Self::of(Arc::new(options))
    }

    /// Attention of a kind given as a trait object (see [`crate::kinds::registry`]).
    pub fn of(kind: Arc<dyn AttentionKind>) -> Self {
        Attention {
            kind,
            scale: None,
            window: None,
            misuse: None,
        }
    }

    /// The kind and its options.
    pub fn kind(&self) -> &dyn AttentionKind {
        self.kind.as_ref()
    }

    /// The kind's options as `O`, if it is that kind.
    pub fn options<O: AttentionKind>(&self) -> Option<&O> {
        self.kind.as_any().downcast_ref::<O>()
    }

    /// The logit scale set, if any (`None`: 1 / sqrt(D)).
    pub fn scale_value(&self) -> Option<f32> {
        self.scale
    }

    /// The sliding window set, if any.
    pub fn window_value(&self) -> Option<u32> {
        self.window
    }

    /// Sets the causal mask (softmax, sigmoid). Stick-breaking is causal by definition: on
    /// it, `causal(true)` is accepted as a no-op statement of fact and `causal(false)` makes
    /// every call fail with [`Error::InvalidOption`].
    pub fn causal(mut self, causal: bool) -> Self {
        match self.kind.with_causal(causal) {
            Some(k) => self.kind = k,
            None if causal && self.kind.name() == "stick-breaking" => {}
            None => self.note_misuse(format!(
                "causal={causal} does not apply to {} attention",
                self.kind.name()
            )),
        }
        self
    }

    /// Sets the logit scale (default 1 / sqrt(D)).
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Sets a sliding window of `w` keys (row i sees keys j > p_i - w).
    pub fn window(mut self, w: u32) -> Self {
        self.window = Some(w);
        self
    }

    /// Sets or clears the window.
    pub fn with_window(mut self, w: Option<u32>) -> Self {
        self.window = w;
        self
    }

    /// Edits the options of kind `O`; on another kind, records the misuse.
    pub(crate) fn edit<O: AttentionKind + Clone>(
        mut self,
        what: &str,
        f: impl FnOnce(&mut O),
    ) -> Self {
        match self.kind.as_any().downcast_ref::<O>() {
            Some(o) => {
                let mut o = o.clone();
                f(&mut o);
                self.kind = Arc::new(o);
            }
            None => self.note_misuse(format!(
                "option '{what}' does not apply to {} attention",
                self.kind.name()
            )),
        }
        self
    }

    fn note_misuse(&mut self, m: String) {
        self.misuse.get_or_insert(m);
    }

    /// Fails with [`Error::InvalidOption`] if a builder method did not apply to the kind, the
    /// scale is not finite or the window is 0.
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = &self.misuse {
            return Err(Error::InvalidOption(m.clone()));
        }
        if self.scale.is_some_and(|s| !s.is_finite()) {
            return Err(Error::InvalidOption(format!(
                "scale {:?} is not finite",
                self.scale
            )));
        }
        if self.window == Some(0) {
            return Err(Error::InvalidOption("window must be at least 1".into()));
        }
        Ok(())
    }

    /// The scale for `s` (1 / sqrt(D) unless set).
    pub(crate) fn resolved_scale(&self, s: &Shape) -> Result<f32> {
        self.validate()?;
        Ok(self.scale.unwrap_or(1.0 / (s.head_dim as f32).sqrt()))
    }

    /// The per-row output of this kind.
    pub fn aux(&self, s: &Shape) -> Result<AuxOut> {
        Ok(self.kind.setup(s)?.aux)
    }

    /// The JSON form that [`Attention::from_json`] reads.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = match self.kind.to_json() {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        };
        map.insert("kind".into(), self.kind.name().into());
        if let Some(s) = self.scale {
            map.insert("scale".into(), s.into());
        }
        if let Some(w) = self.window {
            map.insert("window".into(), w.into());
        }
        serde_json::Value::Object(map)
    }
}

/// GPU outputs of a forward call.
#[derive(Debug, Clone)]
pub struct Output {
    /// Attention output [B, Hq, Tq, Dv].
    pub o: Tensor,
    /// Softmax log-sum-exp [B, Hq, Tq] (`-inf` for rows with no key and no sink).
    pub lse: Option<Tensor>,
    /// Stick-breaking remainder [B, Hq, Tq].
    pub rem: Option<Tensor>,
}

impl Output {
    /// The per-row output (lse or rem), if any.
    pub fn aux(&self) -> Option<&Tensor> {
        self.lse.as_ref().or(self.rem.as_ref())
    }
}

/// Host copies of a forward call's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutput {
    /// Attention output [B, Hq, Tq, Dv].
    pub o: Vec<f32>,
    /// Softmax log-sum-exp [B, Hq, Tq].
    pub lse: Option<Vec<f32>>,
    /// Stick-breaking remainder [B, Hq, Tq].
    pub rem: Option<Vec<f32>>,
}
