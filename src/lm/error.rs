//! The typed error of the model runner ([`LmError`]): what is wrong with a model's files, or
//! the GPU error underneath.

use std::fmt;

use crate::error::Error;

/// Everything that can go wrong loading or running a model. No call reachable by a user
/// panics; it returns one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum LmError {
    /// `config.json` is not valid JSON, or not the shape docs/lm.md gives (unknown key, wrong
    /// type, missing field).
    Json(String),
    /// `config.json` parses but a value is unusable (a zero size, heads that do not divide,
    /// dimensions the kernels cannot tile).
    Config(String),
    /// The `attention` object names a kind webattn does not know, or options it rejects.
    UnknownAttention(String),
    /// The safetensors bytes do not parse.
    Safetensors(String),
    /// A tensor the config needs is absent.
    MissingTensor(String),
    /// The file holds a tensor the config does not describe.
    UnexpectedTensor(String),
    /// A tensor's shape disagrees with the config.
    Shape {
        /// The tensor.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is not f16.
    DType {
        /// The tensor.
        name: String,
        /// Its dtype in the file.
        found: String,
    },
    /// A call's arguments do not fit the session (batch, token counts, capacity).
    Usage(String),
    /// An error of the attention library or the GPU underneath.
    Gpu(Error),
}

impl fmt::Display for LmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmError::Json(s) => write!(f, "config.json: {s}"),
            LmError::Config(s) => write!(f, "config.json: {s}"),
            LmError::UnknownAttention(s) => write!(f, "config.json: attention: {s}"),
            LmError::Safetensors(s) => write!(f, "model.safetensors: {s}"),
            LmError::MissingTensor(n) => write!(f, "model.safetensors: tensor '{n}' is missing"),
            LmError::UnexpectedTensor(n) => write!(
                f,
                "model.safetensors: tensor '{n}' is not part of the model (docs/lm.md)"
            ),
            LmError::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "model.safetensors: tensor '{name}' has shape {found:?}, the config needs {expected:?}"
            ),
            LmError::DType { name, found } => write!(
                f,
                "model.safetensors: tensor '{name}' is {found}, the model format is F16"
            ),
            LmError::Usage(s) => write!(f, "{s}"),
            LmError::Gpu(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LmError {}

impl From<Error> for LmError {
    fn from(e: Error) -> Self {
        LmError::Gpu(e)
    }
}

/// `Result` with [`LmError`].
pub type LmResult<T> = std::result::Result<T, LmError>;
