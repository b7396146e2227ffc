//! The runner's [`Session`]: one KV cache per layer for B sequences of a
//! [`Model`], prefill, decode steps, logits read-back.
//!
//! Every step is recorded into one encoder and submitted once; only the logits (B x vocab
//! f32) come back, through a staging buffer made once per session. A decode step creates no
//! GPU object: its buffers, bind groups and the decode outputs exist from [`Session::new`].
//! Recording is synchronous; reading the logits is `async` (the browser cannot block), with
//! blocking forms natively.

use super::error::{LmError, LmResult};
use super::graph::Graph;
use super::model::Model;
use crate::gpu::{Context, KvCache};

/// B sequences decoded together: one KV cache per layer of `capacity` slots each.
#[derive(Debug)]
pub struct Session {
    model: Model,
    caches: Vec<KvCache>,
    decode: Graph,
    rope: wgpu::Buffer,
    staging: wgpu::Buffer,
    ready: bool,
}

impl Session {
    /// A session of `batch` sequences with room for `capacity` tokens each (prompt and
    /// generated). Allocates everything a decode step uses.
    pub fn new(model: &Model, batch: usize, capacity: usize) -> LmResult<Self> {
        let (ctx, c) = (model.context(), model.config());
        if batch == 0 || capacity == 0 {
            return Err(LmError::Usage(
                "a session needs a batch and a capacity of at least 1".into(),
            ));
        }
        let caches = (0..c.n_layer)
            .map(|_| {
                KvCache::new(
                    ctx,
                    batch,
                    c.n_kv_head,
                    capacity,
                    c.head_dim,
                    c.head_dim,
                    model.precision(),
                )
            })
            .collect::<crate::error::Result<Vec<_>>>()?;
        let dec = ctx.alloc_decode_output(&c.attention, &caches[0], c.n_head, 1)?;
        let rope = model.rope_table(capacity)?;
        let decode = Graph::new(model, batch, 1, &rope, Some(dec))?;
        let sel: Vec<u32> = (0..batch as u32).collect();
        ctx.queue()
            .write_buffer(&decode.sel, 0, bytemuck::cast_slice(&sel));
        let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn lm logits"),
            size: (batch * c.vocab * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Session {
            model: model.clone(),
            caches,
            decode,
            rope,
            staging,
            ready: false,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Sequences B.
    pub fn batch(&self) -> usize {
        self.decode.b
    }

    /// Slots per sequence.
    pub fn capacity(&self) -> usize {
        self.caches[0].capacity()
    }

    /// Tokens each sequence holds so far.
    pub fn lens(&self) -> &[usize] {
        self.caches[0].lens()
    }

    /// Empties every sequence (a new prefill may follow).
    pub fn reset(&mut self) {
        self.caches.iter_mut().for_each(KvCache::reset);
        self.ready = false;
    }

    fn check_tokens(&self, toks: &[u8]) -> LmResult<()> {
        let vocab = self.model.config().vocab;
        match toks.iter().find(|&&t| t as usize >= vocab) {
            Some(t) => Err(LmError::Usage(format!(
                "token {t} is outside the vocabulary of {vocab}"
            ))),
            None => Ok(()),
        }
    }

    /// Runs the prompts (one per sequence, each at least one token) through the model on an
    /// empty session (call [`Session::reset`] first otherwise) and fills the KV caches; the
    /// logits at each prompt's last token are then ready for [`Session::logits`].
    /// Allocates the prompt's buffers (sized for the longest prompt) for this call.
    pub fn prefill(&mut self, prompts: &[&[u8]]) -> LmResult<()> {
        let b = self.batch();
        if prompts.len() != b {
            return Err(LmError::Usage(format!(
                "{} prompts for a session of {b} sequences",
                prompts.len()
            )));
        }
        if self.lens().iter().any(|&l| l > 0) {
            return Err(LmError::Usage(
                "prefill needs an empty session (reset it first)".into(),
            ));
        }
        let lens: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let t = lens.iter().copied().max().unwrap_or(0);
        if lens.contains(&0) || t > self.capacity() {
            return Err(LmError::Usage(format!(
                "prompts need 1 to {} tokens (the capacity); their lengths are {lens:?}",
                self.capacity()
            )));
        }
        for p in prompts {
            self.check_tokens(p)?;
        }
        let model = self.model.clone();
        let ctx = model.context();
        let g = Graph::new(&model, b, t, &self.rope, None)?;
        let mut toks = vec![0u32; b * t];
        for (s, p) in prompts.iter().enumerate() {
            toks[s * t..][..p.len()]
                .iter_mut()
                .zip(p.iter())
                .for_each(|(d, &x)| *d = x as u32);
        }
        let sel: Vec<u32> = lens
            .iter()
            .enumerate()
            .map(|(s, &l)| (s * t + l - 1) as u32)
            .collect();
        let q = ctx.queue();
        q.write_buffer(&g.tok, 0, bytemuck::cast_slice(&toks));
        q.write_buffer(&g.pos0, 0, bytemuck::cast_slice(&vec![0u32; b]));
        q.write_buffer(&g.sel, 0, bytemuck::cast_slice(&sel));
        let mut enc = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn lm prefill"),
            });
        g.record(&model, &mut enc, &mut self.caches, &lens, None)?;
        enc.copy_buffer_to_buffer(g.logits.buffer(), 0, &self.staging, 0, g.logits.byte_len());
        for cache in &mut self.caches {
            for (s, &l) in lens.iter().enumerate() {
                cache.set_len(s, l)?;
            }
        }
        ctx.submit(enc)?;
        self.ready = true;
        Ok(())
    }

    /// One decode step: sequence b takes `tokens[b]` (its newest token) at its next position;
    /// the logits of the following token are then ready for [`Session::logits`]. Records
    /// everything into one encoder and submits once; creates no GPU object.
    /// [`crate::Error::CacheFull`] (inside [`LmError::Gpu`]) once a sequence is full.
    pub fn step(&mut self, tokens: &[u8]) -> LmResult<()> {
        let b = self.batch();
        if tokens.len() != b {
            return Err(LmError::Usage(format!(
                "{} tokens for a session of {b} sequences",
                tokens.len()
            )));
        }
        self.check_tokens(tokens)?;
        let model = self.model.clone();
        let ctx = model.context();
        let toks: Vec<u32> = tokens.iter().map(|&x| x as u32).collect();
        let pos: Vec<u32> = self.lens().iter().map(|&l| l as u32).collect();
        let q = ctx.queue();
        q.write_buffer(&self.decode.tok, 0, bytemuck::cast_slice(&toks));
        q.write_buffer(&self.decode.pos0, 0, bytemuck::cast_slice(&pos));
        let mut enc = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn lm step"),
            });
        let lens = self.lens().to_vec();
        self.decode
            .record(&model, &mut enc, &mut self.caches, &lens, None)?;
        let logits = &self.decode.logits;
        enc.copy_buffer_to_buffer(logits.buffer(), 0, &self.staging, 0, logits.byte_len());
        ctx.submit(enc)?;
        self.ready = true;
        Ok(())
    }

    /// The logits [B, vocab] after the last prefill or step (waits for the GPU). Do not
    /// call it twice at once.
    pub async fn logits(&self) -> LmResult<Vec<f32>> {
        if !self.ready {
            return Err(LmError::Usage(
                "no logits yet: call prefill or step first".into(),
            ));
        }
        Ok(read_staging(self.model.context(), &self.staging).await?)
    }

    /// Blocking form of [`Session::logits`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn logits_blocking(&self) -> LmResult<Vec<f32>> {
        pollster::block_on(self.logits())
    }
}

/// Maps a staging buffer, copies it out as f32 and unmaps it.
pub(crate) async fn read_staging(
    ctx: &Context,
    staging: &wgpu::Buffer,
) -> crate::error::Result<Vec<f32>> {
    use crate::error::Error;
    ctx.check()?;
    let (tx, rx) = futures_channel::oneshot::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    {
        if let Err(e) = ctx.device().poll(wgpu::PollType::wait_indefinitely()) {
            ctx.check()?;
            return Err(Error::Gpu(format!("waiting for the GPU: {e}")));
        }
    }
    let mapped = rx.await;
    ctx.check()?;
    mapped
        .map_err(|_| Error::Gpu("read-back was cancelled (device lost?)".into()))?
        .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
    let data: Vec<f32> = bytemuck::pod_collect_to_vec(
        &staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("read-back failed: {e:?}")))?,
    );
    staging.unmap();
    Ok(data)
}
