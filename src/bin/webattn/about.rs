//! The long help (`webattn <command> --help`) of `run`, `check` and `bench`.

pub const RUN_ABOUT: &str = "\
Run one attention call on q, k, v read from a .safetensors file; write o and lse or rem.

Input: tensors q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv], all of one dtype (F32,
F16 or BF16), and optionally sinks [Hq] (used by kinds with sink logits; --sinks overrides it).
Tk = 0 (an empty cache) is valid.

Dtype: the kernels keep the input's storage type: F32 inputs run the f32 kernels, F16 inputs the
f16 kernels (f32 accumulation). BF16 inputs run in f32 (bf16's range exceeds f16's).
--compute forces one; --out-dtype sets o's dtype (default: the compute dtype). lse, rem and the
weights are always written as F32.

Output: OUT is never the input file (also through a symlink or a hard link) unless --in-place is
given; then the input is read completely first and replaced atomically. A symlink at OUT is
written through (its target is replaced, the link kept); a special file (/dev/null, a FIFO) is
opened and written directly; a regular file is replaced atomically through a temporary file in
its directory and keeps its permissions; a new file gets the umask's permissions.

Decode step (--lengths L0,L1,...): k [B, Hkv, Tk_max, D] and v [B, Hkv, Tk_max, Dv] are a KV
cache; sequence b holds its first L_b keys (one length per sequence, each at most Tk_max; the
slots past it are never read, whatever they hold). q [B, Hq, Tq, D] are the step's new rows,
bottom-right aligned to each sequence's length (row i at position i + L_b - Tq). It runs through
KvCache and Context::record_decode and writes o and lse or rem as above (no --weights).";

pub const BENCH_ABOUT: &str = "\
Time the forward kernels (or decode steps, --decode) with GPU timestamps, or the CPU cost of
recording (--cpu).

bench: every kind (causal where it has a mask) on B x H x T x D shapes (Tq = Tk, D = Dv): warm-up
3, median and min of --reps GPU-timestamped calls, TFLOP/s of the causal FLOPs (4 B H T T D / 2).

bench --decode: decode steps over a full KV cache on B x Hq x Hkv x Tk x D shapes (every sequence
at Tk keys, --q-len new rows per step, random data): Context::record_decode_timed, warm-up 3,
median and min of --reps steps; GB/s = (bytes of K and V of the visible keys, read once, plus q
and o) over the median time, the formula of bench/torch_peers.py --mode decode; the number of
chunks of the split plan per (sequence, kv head) and their length in keys.

bench --cpu: µs per Context::record_into call (median over --calls calls into one encoder).
bench --cpu --decode: µs to record one decode step of a 4-layer model (4 KV caches, one encoder:
4 x (KvCache::append + Context::record_decode)), median over --steps steps, each submitted; and
the wgpu objects created by the steps (none).";

pub const CHECK_ABOUT: &str = "\
Compare the GPU with the f64 reference on fresh random inputs (SPEC.md section 6).

Every run draws a fresh seed and prints it; --seed N (or WEBATTN_SEED) replays one. Each row shows
the GPU's relative L2 error and largest absolute error against f64, e32 (the error of a plain f32
computation of the same kind on the same inputs) and the bound max(tol, 2 e32), tol = 1e-5 for f32
and 5e-3 for f16; a row passes when the outputs are finite where they must be and the error is
within the bound.

Without attention options, check runs the option sets of every kind (or of --kind) and the
extreme-logit sets; with options, it runs that one attention of one --kind. --sweep runs the
option sets over the sweep shapes (T = 1, tile edges, every head dim, GQA, Tq != Tk, Tk = 0) and
prints the largest error per kind and output; it exits non-zero on any failure.";
