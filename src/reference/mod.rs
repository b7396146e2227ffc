//! The f64 CPU references (SPEC.md, no tiling): the shared index arithmetic of SPEC.md
//! ([`Inputs`]), the careful scalar functions, and the public entry points [`reference`] and
//! [`reference_weights`]. Each kind's formula lives in its own folder under `src/kinds/`.
//!
//! Every formula is generic over the float type, so the same code also gives the
//! "straightforward f32 computation" that SPEC.md section 6 uses as the error floor of
//! ill-conditioned cases ([`reference_in`] with [`Precision::F32`]).

use crate::attention::Attention;
use crate::error::Result;
use crate::kinds::kind::AuxOut;
use crate::shape::Shape;

pub mod math;

pub use math::{Inputs, Precision, SumOrder};

/// Reference outputs in f64. `o` is [B, Hq, Tq, Dv]; `lse` / `rem` are [B, Hq, Tq].
#[derive(Debug, Clone, PartialEq)]
pub struct RefOutput {
    /// The attention output.
    pub o: Vec<f64>,
    /// Softmax log-sum-exp per row (`-inf` for a row with no key and no sink).
    pub lse: Option<Vec<f64>>,
    /// Stick-breaking remainder per row.
    pub rem: Option<Vec<f64>>,
}

fn inputs<'a>(
    attn: &Attention,
    s: &Shape,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
) -> Result<Inputs<'a>> {
    s.check_host(q.len(), k.len(), v.len())?;
    attn.validate()?;
    attn.kind().setup(s)?;
    Ok(Inputs {
        s: *s,
        q,
        k,
        v,
        scale: attn.resolved_scale(s)? as f64,
        window: attn.window_value(),
        order: SumOrder::Sequential,
    })
}

/// f64 CPU reference of `attn` on host inputs (SPEC.md, no tiling): o, and lse or rem.
pub fn reference(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Result<RefOutput> {
    reference_in(attn, shape, q, k, v, Precision::F64)
}

/// [`reference`] computed in `precision`; results are returned widened to f64.
pub fn reference_in(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    precision: Precision,
) -> Result<RefOutput> {
    reference_ordered(attn, shape, q, k, v, precision, SumOrder::Sequential)
}

/// [`reference_in`] with the logits' dot products summed in `order`.
pub fn reference_ordered(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    precision: Precision,
    order: SumOrder,
) -> Result<RefOutput> {
    let mut x = inputs(attn, shape, q, k, v)?;
    x.order = order;
    let kind = attn.kind();
    let (a, aux) = kind.reference(&x, precision)?;
    let reads = |i, j| kind.reads_value(&x, i, j);
    let o = match precision {
        Precision::F64 => x.apply(&a, reads),
        Precision::F32 => {
            let a32: Vec<f32> = a.iter().map(|&w| w as f32).collect();
            x.apply(&a32, reads).into_iter().map(f64::from).collect()
        }
    };
    let (lse, rem) = match attn.kind().setup(shape)?.aux {
        AuxOut::Lse => (aux, None),
        AuxOut::Rem => (None, aux),
        AuxOut::None => (None, None),
    };
    Ok(RefOutput { o, lse, rem })
}

/// f64 CPU reference of the attention weights A [B, Hq, Tq, Tk] of `attn`.
pub fn reference_weights(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Result<Vec<f64>> {
    let x = inputs(attn, shape, q, k, v)?;
    Ok(attn.kind().reference(&x, Precision::F64)?.0)
}
