//! Tensors on a [`Context`]: allocation, upload (new or into an existing tensor), poisoning
//! and read-back.

use wgpu::util::DeviceExt;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{byte_len, Tensor};

use super::context::{Context, Counters};

impl Context {
    /// Creates an uninitialised tensor (usable as an output of your own kernels).
    pub fn empty(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = self.checked_size(shape, dtype)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn tensor"),
            size: bytes.max(16).next_multiple_of(4),
            usage: Self::usage(),
            mapped_at_creation: false,
        });
        Counters::bump(&self.counters.buffers);
        Tensor::from_buffer(buffer, shape, dtype)
    }

    /// Uploads f32 data as an f32 tensor of `shape`.
    pub fn tensor_f32(&self, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        self.upload(shape, DType::F32, data.len(), bytemuck::cast_slice(data))
    }

    /// Uploads f16 data (the `half` crate) as an f16 tensor of `shape`.
    pub fn tensor_f16(&self, shape: &[usize], data: &[half::f16]) -> Result<Tensor> {
        self.upload(shape, DType::F16, data.len(), bytemuck::cast_slice(data))
    }

    /// Writes f32 data into an existing f32 tensor (queued: it happens before the next
    /// submit's commands). Creates no wgpu object, so a loop can reuse its tensors.
    pub fn write_f32(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        self.write(t, DType::F32, data.len(), bytemuck::cast_slice(data))
    }

    /// Writes f16 data into an existing f16 tensor (see [`Context::write_f32`]).
    pub fn write_f16(&self, t: &Tensor, data: &[half::f16]) -> Result<()> {
        self.write(t, DType::F16, data.len(), bytemuck::cast_slice(data))
    }

    fn write(&self, t: &Tensor, dtype: DType, len: usize, bytes: &[u8]) -> Result<()> {
        self.check()?;
        if t.dtype() != dtype {
            return Err(Error::DTypeMismatch {
                what: "tensor written",
                expected: t.dtype(),
                found: dtype,
            });
        }
        if len != t.len() {
            return Err(Error::ShapeMismatch(format!(
                "tensor of shape {:?} holds {} elements but the data has {len}",
                t.shape(),
                t.len()
            )));
        }
        if bytes.len().is_multiple_of(4) {
            self.queue.write_buffer(t.buffer(), 0, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(4), 0);
            self.queue.write_buffer(t.buffer(), 0, &padded);
        }
        Ok(())
    }

    pub(crate) fn usage() -> wgpu::BufferUsages {
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
    }

    fn checked_size(&self, shape: &[usize], dtype: DType) -> Result<u64> {
        let bytes = byte_len(shape, dtype)?;
        if bytes > self.info.max_buffer {
            return Err(Error::TensorTooLarge {
                what: format!("tensor of shape {shape:?}"),
                size: bytes,
                limit: self.info.max_buffer,
            });
        }
        Ok(bytes)
    }

    fn upload(&self, shape: &[usize], dtype: DType, len: usize, bytes: &[u8]) -> Result<Tensor> {
        self.check()?;
        let n = byte_len(shape, DType::F32)? / 4;
        if n != len as u64 {
            return Err(Error::ShapeMismatch(format!(
                "shape {shape:?} holds {n} elements but the data has {len}"
            )));
        }
        let size = self.checked_size(shape, dtype)?;
        let mut padded = bytes.to_vec();
        padded.resize(size.max(16).next_multiple_of(4) as usize, 0);
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("webattn tensor"),
                contents: &padded,
                usage: Self::usage(),
            });
        Counters::bump(&self.counters.buffers);
        Tensor::from_buffer(buffer, shape, dtype)
    }

    /// Overwrites a tensor with a repeated f32 bit pattern (tests poison outputs with NaN).
    pub fn fill_bits(&self, t: &Tensor, bits: u32) {
        let n = (t.buffer().size() / 4) as usize;
        self.queue
            .write_buffer(t.buffer(), 0, bytemuck::cast_slice(&vec![bits; n]));
    }

    /// Reads a tensor back as raw bytes (exactly `t.byte_len()` of them).
    pub async fn read_bytes(&self, t: &Tensor) -> Result<Vec<u8>> {
        self.check()?;
        let len = t.byte_len();
        let copy = len.next_multiple_of(4).min(t.buffer().size());
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn read-back"),
            size: copy.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Counters::bump(&self.counters.buffers);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(t.buffer(), 0, &staging, 0, copy);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
                self.check()?;
                return Err(Error::Gpu(format!("waiting for the GPU: {e}")));
            }
        }
        let mapped = rx.await;
        self.check()?;
        mapped
            .map_err(|_| Error::Gpu("read-back was cancelled (device lost?)".into()))?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("read-back failed: {e:?}")))?[..len as usize]
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Reads an f32 tensor (or an f16 one, widened) back to the host.
    pub async fn read_f32(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(t).await?;
        Ok(match t.dtype() {
            DType::F32 => bytemuck::pod_collect_to_vec(&bytes),
            DType::F16 => {
                let h: Vec<half::f16> = bytemuck::pod_collect_to_vec(&bytes);
                let mut out = vec![0.0f32; h.len()];
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(h.as_slice(), &mut out);
                out
            }
        })
    }

    /// Blocking form of [`Context::read_f32`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(&self, t: &Tensor) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32(t))
    }
}
