//! The typed error every fallible call returns. Depends only on [`crate::dtype`].

use std::fmt;

/// Everything that can go wrong in webattn. No call that a user can reach panics; it returns
/// one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No adapter matched the request (no GPU, no software driver, or the forced backend is absent).
    NoAdapter(String),
    /// Tensor shapes do not fit together (or a slice length does not match a shape).
    ShapeMismatch(String),
    /// A tensor has the wrong element type for this call.
    DTypeMismatch {
        /// Which argument.
        what: &'static str,
        /// The type the call needs.
        expected: crate::dtype::DType,
        /// The type it got.
        found: crate::dtype::DType,
    },
    /// The head dimension is not one the kernels support (multiples of 4, from 4 to 256).
    UnsupportedHeadDim {
        /// Query/key head dimension D.
        d: usize,
        /// Value head dimension Dv.
        dv: usize,
    },
    /// A tensor (or one unit of work) is larger than a device limit allows, even after
    /// splitting the work over batch and heads.
    TensorTooLarge {
        /// Which tensor or quantity.
        what: String,
        /// Its size in bytes (or elements, as `what` says).
        size: u64,
        /// The device limit it exceeds.
        limit: u64,
    },
    /// Appending to a KV cache would take a sequence past the cache's capacity (nothing was
    /// appended; a cache never wraps).
    CacheFull {
        /// The sequence (batch index).
        sequence: usize,
        /// Its length before the append.
        len: usize,
        /// The rows the append would add.
        adding: usize,
        /// Slots per sequence.
        capacity: usize,
    },
    /// The call needs a device feature the adapter or device lacks.
    MissingFeature(String),
    /// An option has a value the kernels cannot honour (NaN scale, wrong number of sinks, ...).
    InvalidOption(String),
    /// An output tensor shares its buffer with an input or another output of the same call
    /// (WebGPU forbids a buffer bound for reading and writing in one dispatch).
    Aliasing(String),
    /// The device was lost (driver reset, `destroy`, browser tab in the background...).
    /// The context cannot be used any more; create a new one.
    DeviceLost(String),
    /// The GPU API reported an error (validation or out of memory) for work webattn submitted.
    Gpu(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(s) => write!(f, "no GPU adapter available: {s}"),
            Error::ShapeMismatch(s) => write!(f, "shape mismatch: {s}"),
            Error::DTypeMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "dtype mismatch: {what} must be {expected:?}, got {found:?}"
            ),
            Error::UnsupportedHeadDim { d, dv } => write!(
                f,
                "unsupported head dim D={d}, Dv={dv}: both must be multiples of 4 between 4 and 256"
            ),
            Error::TensorTooLarge { what, size, limit } => {
                write!(
                    f,
                    "{what} is too large: {size} exceeds the device limit {limit}"
                )
            }
            Error::CacheFull {
                sequence,
                len,
                adding,
                capacity,
            } => write!(
                f,
                "KV cache full: sequence {sequence} holds {len} of {capacity} slots and cannot \
                 take {adding} more"
            ),
            Error::MissingFeature(s) => write!(f, "missing device feature: {s}"),
            Error::InvalidOption(s) => write!(f, "invalid option: {s}"),
            Error::Aliasing(s) => write!(f, "aliasing: {s}"),
            Error::DeviceLost(s) => write!(f, "the GPU device was lost: {s}"),
            Error::Gpu(s) => write!(f, "GPU error: {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with webattn's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
