//! The Rust <-> WGSL contract, defined once, here: the parameter block every pass reads
//! ([`Params`]), its flag bits, and the element types of bindings. The WGSL declarations
//! (`struct Params`, `const FLAG_*`, every `@binding`) are generated from these definitions by
//! [`crate::shader`]; no WGSL file declares them. A test (`contract_matches_naga_reflection`)
//! parses every assembled kernel with naga and checks that the struct's member offsets and
//! each pass's binding numbers, names and access modes are what the host binds.

/// Declares a `#[repr(C)]` uniform block once, for both sides: the Rust struct (Pod) and its
/// WGSL text. Only u32, i32 and f32 fields (4 bytes each, no padding rules to get wrong).
macro_rules! gpu_struct {
    ($(#[$m:meta])* $name:ident { $($(#[doc = $doc:literal])* $field:ident : $ty:ident,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl $name {
            /// Every field: (name, byte offset, WGSL type), in declaration order.
            pub(crate) const FIELDS: &'static [(&'static str, usize, &'static str)] = &[
                $((stringify!($field), std::mem::offset_of!($name, $field), stringify!($ty)),)*
            ];

            /// The WGSL declaration of this struct, each member with its doc as a comment.
            pub(crate) fn wgsl() -> String {
                let docs: &[&str] = &[$(concat!($($doc,)*),)*];
                let mut s = format!("struct {} {{\n", stringify!($name));
                for ((name, _, ty), doc) in Self::FIELDS.iter().zip(docs) {
                    s += &format!("    {name}: {ty}, //{doc}\n");
                }
                s + "}\n"
            }
        }
    };
}

gpu_struct! {
    /// The uniform block of every pass (binding 0). The fields after `self_excl` are the decode
    /// passes' (src/pass/decode.rs); other passes leave them 0.
    Params {
        /// query rows Tq
        tq: u32,
        /// keys Tk
        tk: u32,
        /// query heads Hq
        hq: u32,
        /// query heads per kv head, Hq / Hkv (>= 1)
        group: u32,
        /// first unit (b * Hq + h) of this dispatch; workgroup_id.y is relative to it
        unit0: u32,
        /// element index (vec4 for tensors) where the bound q range starts
        q_base: u32,
        /// where the bound k range starts
        k_base: u32,
        /// where the bound v range starts
        v_base: u32,
        /// where the bound output range starts (vec4 index for o, scalar for weights)
        o_base: u32,
        /// scalar index where the bound lse / rem range starts
        aux_base: u32,
        /// FLAG_* bits
        flags: u32,
        /// sliding window W (keys j > p_i - W); 0 = none
        window: u32,
        /// logit scale
        scale: f32,
        /// sigmoid bias b
        bias: f32,
        /// Tk - Tq: query row i sits at absolute position p_i = i + diag
        diag: i32,
        /// 1: key j = p_i is excluded (stick-breaking default), else 0
        self_excl: u32,
        /// decode passes: kv heads Hkv (kv unit u = b * Hkv + h)
        kv_heads: u32,
        /// decode passes: cache slots per (batch, kv head)
        capacity: u32,
        /// decode passes: query rows per kv head, group * Tq
        rows: u32,
        /// decode passes: fewest keys per chunk
        chunk_min: u32,
        /// decode passes: most chunks per (batch, kv head), the partials' stride
        max_chunks: u32,
    }
}

/// Causal mask (bottom-right aligned).
pub(crate) const FLAG_CAUSAL: u32 = 1;
/// Stick-breaking: the remainder goes to the current token's value.
pub(crate) const FLAG_REM_TO_CURRENT: u32 = 2;
/// Sigmoid: row-normalised variant.
pub(crate) const FLAG_NORMALIZE: u32 = 4;
/// Softmax: per-head sink logits are bound.
pub(crate) const FLAG_SINK: u32 = 8;
/// Write the per-row output (lse, rem).
pub(crate) const FLAG_WRITE_AUX: u32 = 16;
/// Sigmoid: the bias is -ln(n) of the keys the row's sequence has (decode passes compute it
/// per sequence from the cache lengths; the forward pass gets it in `bias`).
pub(crate) const FLAG_BIAS_LOG_KEYS: u32 = 32;

/// Every flag, as WGSL sees it.
pub(crate) const FLAGS: &[(&str, u32)] = &[
    ("FLAG_CAUSAL", FLAG_CAUSAL),
    ("FLAG_REM_TO_CURRENT", FLAG_REM_TO_CURRENT),
    ("FLAG_NORMALIZE", FLAG_NORMALIZE),
    ("FLAG_SINK", FLAG_SINK),
    ("FLAG_WRITE_AUX", FLAG_WRITE_AUX),
    ("FLAG_BIAS_LOG_KEYS", FLAG_BIAS_LOG_KEYS),
];

/// WGSL text of the flag constants.
pub(crate) fn flags_wgsl() -> String {
    FLAGS
        .iter()
        .map(|(n, v)| format!("const {n}: u32 = {v}u;\n"))
        .collect()
}

/// How a binding is accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// `var<uniform>` of type [`Params`].
    Uniform,
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// The element type of a storage binding's runtime-sized array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Elem {
    /// A tensor in the call's storage type, 4 elements per item: `vec4<f32>`, `vec4<f16>`
    /// or, packed, `vec2<u32>`.
    Tensor,
    /// `f32`.
    F32,
    /// `u32` (f32 bits where -inf must be written exactly).
    U32,
    /// `vec4<f32>` whatever the storage type (the decode passes' f32 partials).
    Vec4F32,
}

/// One binding of a pass: its slot is its index in the pass's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Binding {
    /// The WGSL variable name.
    pub name: &'static str,
    /// Uniform, read-only or read-write storage.
    pub access: Access,
    /// Element type (storage bindings).
    pub elem: Elem,
}

impl Binding {
    /// The uniform parameter block.
    pub const fn params() -> Self {
        Binding {
            name: "params",
            access: Access::Uniform,
            elem: Elem::U32,
        }
    }
    /// A read-only storage binding.
    pub const fn read(name: &'static str, elem: Elem) -> Self {
        Binding {
            name,
            access: Access::Read,
            elem,
        }
    }
    /// A read-write storage binding.
    pub const fn write(name: &'static str, elem: Elem) -> Self {
        Binding {
            name,
            access: Access::ReadWrite,
            elem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_dense_4_byte_fields() {
        for (i, (name, off, ty)) in Params::FIELDS.iter().enumerate() {
            assert_eq!(*off, 4 * i, "{name}");
            assert!(["u32", "i32", "f32"].contains(ty), "{name}: {ty}");
        }
        assert_eq!(std::mem::size_of::<Params>(), 4 * Params::FIELDS.len());
        assert!(Params::wgsl().contains("diag: i32,"));
    }
}
