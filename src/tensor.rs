//! GPU tensors: a storage buffer with a shape and an element type.

use crate::dtype::DType;
use crate::error::{Error, Result};

/// A tensor on the GPU: a storage buffer, its shape (row-major, contiguous) and dtype.
///
/// Create one with [`crate::Context::tensor_f32`] / [`crate::Context::tensor_f16`] /
/// [`crate::Context::empty`], or wrap a buffer the application owns with [`Tensor::from_buffer`].
/// Cloning is cheap (the buffer is reference-counted by wgpu).
#[derive(Debug, Clone)]
pub struct Tensor {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

impl Tensor {
    /// Wraps an existing buffer (it needs `STORAGE` usage, plus `COPY_SRC` to be read back).
    /// Fails with [`Error::ShapeMismatch`] if the buffer is smaller than the shape needs and
    /// [`Error::InvalidOption`] if it lacks `STORAGE` usage.
    pub fn from_buffer(buffer: wgpu::Buffer, shape: &[usize], dtype: DType) -> Result<Self> {
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidOption(format!(
                "a tensor's buffer needs STORAGE usage (it has {:?})",
                buffer.usage()
            )));
        }
        let need = byte_len(shape, dtype)?;
        if buffer.size() < need {
            return Err(Error::ShapeMismatch(format!(
                "buffer of {} bytes is too small for shape {shape:?} of {dtype:?} ({need} bytes)",
                buffer.size()
            )));
        }
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The underlying buffer (to bind it in the application's own passes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes.
    pub fn byte_len(&self) -> u64 {
        (self.len() * self.dtype.size()) as u64
    }
}

/// Bytes needed for `shape` of `dtype`, with overflow checked.
pub(crate) fn byte_len(shape: &[usize], dtype: DType) -> Result<u64> {
    shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::TensorTooLarge {
            what: format!("shape {shape:?}"),
            size: u64::MAX,
            limit: u64::MAX,
        })
}
