//! `webattn`: the command-line program (cargo feature `cli`).
//!
//! ```text
//! webattn info                                     adapter, features, variant, tiles per head dim and dtype
//! webattn run -i IN.safetensors -o OUT.safetensors --kind KIND [--weights] [--in-place]
//!             [--compute f32|f16] [--out-dtype f32|f16] [attention options]
//! webattn run ... --lengths L0,L1,...              decode step over a KV cache (k, v: the cache)
//! webattn check [--kind KIND|all] [--dtype f32|f16] [--seed N] [shape options] [attention options]
//! webattn check --sweep [--dtype f32|f16] [--kind KIND|all] [--seed N]
//! webattn bench [--shapes BxHxTxD,...] [--kind KIND|all] [--dtype f32|f16|all] [--reps N] [--json PATH]
//! webattn bench --cpu [--shapes BxHxTxD] [--kind KIND|all] [--calls N]
//! webattn bench --decode [--shapes BxHqxHkvxTkxD,...] [--q-len N] [--kind KIND|all]
//!               [--dtype f32|f16|all] [--reps N] [--json PATH]
//! webattn bench --cpu --decode [--shapes BxHqxHkvxTkxD] [--q-len N] [--kind KIND|all] [--steps N]
//! webattn generate --model models/NAME --prompt TEXT [-n N] [--temperature T] [--top-k K]
//!                  [--seed S] [--batch B] [--dtype f32|f16] [--capacity N]
//! webattn generate --model models/NAME --bench [--json PATH]   tokens/s, batch 1 and 8
//! ```
//!
//! Every subcommand takes `--adapter`, `--variant` (they override `WEBATTN_ADAPTER` and
//! `WEBATTN_VARIANT`; an unknown value of those variables is an error) and `--max-wg-mem`;
//! `webattn <command> --help` describes its flags. Kinds come from the library's registry
//! (`webattn::kinds::registry()`): the attention options a user gives become one JSON object
//! for `Attention::from_json`, so an option the chosen kind does not have is an error.
//!
//! `run` never overwrites its input unless `--in-place` is given; it writes through symlinks
//! and special files (`/dev/null`), replaces regular files atomically and keeps their
//! permissions. It keeps the input's storage type (f32 or f16 kernels; bf16 runs in f32).
//! Files: `run.rs`, `output.rs` (safe writing), `options.rs` (attention options), `check.rs`,
//! `bench.rs`, `bench_decode.rs` (`bench --decode`), `info.rs`, `about.rs` (long help texts),
//! `generate.rs` (the language-model runner, docs/lm.md).

mod about;
mod bench;
mod bench_decode;
mod check;
mod generate;
mod info;
mod options;
mod output;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use webattn::kinds::{self, KindEntry};
use webattn::{AdapterChoice, Context, ContextOptions, DType, Variant};

use crate::options::AttnArgs;

/// Tiled softmax, sigmoid and stick-breaking attention on WebGPU (wgpu).
///
/// With no GPU it runs on a software adapter (Mesa lavapipe on Linux).
#[derive(Debug, Parser)]
#[command(
    name = "webattn",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the adapter, its features, the kernel variant and the tiles per head dim and dtype.
    Info(InfoArgs),
    /// Run one attention call on q, k, v read from a .safetensors file; write o and lse or rem.
    #[command(long_about = about::RUN_ABOUT)]
    Run(Box<RunArgs>),
    /// Compare the GPU with the f64 reference on fresh random inputs (SPEC.md section 6).
    #[command(long_about = about::CHECK_ABOUT)]
    Check(Box<CheckArgs>),
    /// Time the forward kernels (or decode steps, --decode) with GPU timestamps, or the CPU
    /// cost of recording (--cpu).
    #[command(long_about = about::BENCH_ABOUT)]
    Bench(Box<BenchArgs>),
    /// Generate text with a tiny byte-level model (docs/lm.md), or time it (--bench).
    Generate(Box<GenerateArgs>),
    /// Write a model with random weights (tests).
    #[command(hide = true)]
    LmRandomModel(RandomModelArgs),
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The model's folder (config.json, model.safetensors)
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The prompt (bytes of its UTF-8 text)
    #[arg(long, default_value = "And God said")]
    prompt: String,
    /// Tokens (bytes) to generate per sequence
    #[arg(short = 'n', long = "tokens", default_value_t = 200)]
    tokens: usize,
    /// Sampling temperature (0: greedy)
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Sample from the K most likely bytes only (0: all)
    #[arg(long, value_name = "K", default_value_t = 0)]
    top_k: usize,
    /// Sampling seed [default: a fresh one, printed]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Sequences decoded together (each from the prompt; sequence 0 streams)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256).map(|x| x as usize))]
    batch: usize,
    /// Precision of weights, KV caches and attention
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DTypeArg,
    /// KV-cache slots per sequence [default: prompt + tokens + 1]
    #[arg(long, value_name = "N")]
    capacity: Option<usize>,
    /// Time a prefill and decode steps at batch 1 and 8 instead of generating
    #[arg(long)]
    bench: bool,
    /// --bench: prompt bytes
    #[arg(long, default_value_t = 512, requires = "bench", value_parser = clap::value_parser!(u32).range(1..=65536).map(|x| x as usize))]
    bench_prompt: usize,
    /// --bench: decode steps
    #[arg(long, default_value_t = 256, requires = "bench", value_parser = clap::value_parser!(u32).range(1..=65536).map(|x| x as usize))]
    bench_steps: usize,
    /// --bench: also write the rows as JSON to PATH
    #[arg(long, value_name = "PATH", requires = "bench")]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Debug, Args)]
struct RandomModelArgs {
    /// Output folder
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// sb-nope, softmax-rope or sigmoid-rope
    #[arg(long, default_value = "sb-nope")]
    kind: String,
    /// A 2-layer model of width 64 instead of docs/lm.md's sizes
    #[arg(long)]
    small: bool,
    /// Weights seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Device selection, shared by every subcommand.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Device")]
struct DeviceArgs {
    /// Adapter: auto, software, vulkan, metal, dx12, gl, webgpu [default: $WEBATTN_ADAPTER or auto]
    #[arg(long, value_name = "NAME", value_parser = parse_adapter)]
    adapter: Option<AdapterChoice>,
    /// Kernel variant: portable, subgroup, coopmat, coopmat2 [default: $WEBATTN_VARIANT or the fastest]
    #[arg(long, value_name = "NAME", value_parser = parse_variant)]
    variant: Option<Variant>,
    /// Plan tiles for at most this much workgroup memory (tuning, tests)
    #[arg(long, value_name = "BYTES")]
    max_wg_mem: Option<u32>,
}

#[derive(Debug, Args)]
struct InfoArgs {
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Input .safetensors with q, k, v (and optionally sinks)
    #[arg(short, long, value_name = "IN.safetensors")]
    input: PathBuf,
    /// Output .safetensors (o, lse or rem, weights); never the input unless --in-place
    #[arg(short, long, value_name = "OUT.safetensors")]
    output: PathBuf,
    /// Decode step over a KV cache: k, v are the cache, sequence b holds its first L_b keys
    #[arg(long, value_name = "L0,L1,...", value_delimiter = ',', num_args = 1.., conflicts_with = "weights")]
    lengths: Option<Vec<usize>>,
    /// Attention kind
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: &'static KindEntry,
    /// Also write the attention weights 'weights' [B, Hq, Tq, Tk] (F32; checked to fit first)
    #[arg(long)]
    weights: bool,
    /// Allow OUT to be the input file: read it completely, then replace it atomically
    #[arg(long)]
    in_place: bool,
    /// Storage type of the kernels [default: the input's; bf16 runs in f32]
    #[arg(long, value_enum, value_name = "DTYPE")]
    compute: Option<DTypeArg>,
    /// Dtype of o in the output file [default: the compute dtype]
    #[arg(long, value_enum, value_name = "DTYPE")]
    out_dtype: Option<DTypeArg>,
    #[command(flatten)]
    attn: AttnArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("shape").multiple(true)))]
struct CheckArgs {
    /// Every kind's option sets over the sweep shapes; the largest error per kind and output
    #[arg(long, conflicts_with_all = ["batch", "heads", "kv_heads", "q_len", "kv_len", "dim", "v_dim", "AttnArgs"])]
    sweep: bool,
    /// Kind to check, or all
    #[arg(long, value_name = "KIND|all", default_value = "all", value_parser = parse_kind_sel)]
    kind: KindSel,
    /// Storage type: f32 (tolerance 1e-5) or f16 (5e-3)
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DTypeArg,
    /// Replay the random inputs of an earlier run [default: a fresh seed, printed]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Batch B
    #[arg(long, default_value_t = 1, group = "shape")]
    batch: usize,
    /// Query heads Hq
    #[arg(long, default_value_t = 4, group = "shape")]
    heads: usize,
    /// Key/value heads Hkv [default: Hq]
    #[arg(long, group = "shape")]
    kv_heads: Option<usize>,
    /// Query length Tq
    #[arg(long, default_value_t = 128, group = "shape")]
    q_len: usize,
    /// Key length Tk [default: Tq]
    #[arg(long, group = "shape")]
    kv_len: Option<usize>,
    /// Head dim D
    #[arg(long, default_value_t = 64, group = "shape")]
    dim: usize,
    /// Value head dim Dv [default: D]
    #[arg(long, group = "shape")]
    v_dim: Option<usize>,
    #[command(flatten)]
    attn: AttnArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Shapes B x H x T x D (Tq = Tk, D = Dv); with --decode B x Hq x Hkv x Tk x D [default: 1x16x1024x64,1x16x4096x64,1x16x16384x64,4x12x4096x128; --decode: 1x32x8x4096x128,1x32x8x32768x128,1x32x8x131072x128,8x32x8x8192x128; --cpu: 1x8x128x64; --cpu --decode: 1x32x8x4096x128]
    #[arg(long, value_name = "SHAPE,...", value_delimiter = ',', value_parser = parse_shape)]
    shapes: Vec<ShapeArg>,
    /// Time decode steps over a full KV cache (Context::record_decode_timed), GB/s
    #[arg(long)]
    decode: bool,
    /// --decode: new query rows per step Tq
    #[arg(long, value_name = "N", default_value_t = 1, requires = "decode", value_parser = clap::value_parser!(u32).range(1..=4096))]
    q_len: u32,
    /// Kind to time, or all (causal where the kind has a mask)
    #[arg(long, value_name = "KIND|all", default_value = "all", value_parser = parse_kind_sel)]
    kind: KindSel,
    /// Storage types to time (--cpu: f32 unless f16)
    #[arg(long, value_enum, default_value = "all")]
    dtype: BenchDType,
    /// Timed runs per row (median of them; 20 to 2048)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(20..=2048))]
    reps: u32,
    /// Also write the rows as JSON to PATH
    #[arg(long, value_name = "PATH", conflicts_with = "cpu")]
    json: Option<PathBuf>,
    /// Measure the CPU cost of recording (µs per call or per decode step, median) instead of GPU time
    #[arg(long)]
    cpu: bool,
    /// --cpu: timed record_into calls per kind (one encoder, submitted every 250 calls)
    #[arg(long, default_value_t = 3000, requires = "cpu", conflicts_with = "decode", value_parser = clap::value_parser!(u32).range(100..))]
    calls: u32,
    /// --cpu --decode: timed decode steps per kind (one submit per step)
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "cpu", requires = "decode", value_parser = clap::value_parser!(u32).range(50..=1_000_000))]
    steps: u32,
    #[command(flatten)]
    device: DeviceArgs,
}

/// A `--shapes` entry: `BxHxTxD` (forward) or `BxHqxHkvxTkxD` (decode, Tq = 1 until `--q-len`
/// sets it).
#[derive(Debug, Clone, Copy)]
enum ShapeArg {
    Forward(webattn::Shape),
    Decode(webattn::Shape),
}

/// A storage type on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DTypeArg {
    F32,
    F16,
}

impl From<DTypeArg> for DType {
    fn from(d: DTypeArg) -> DType {
        match d {
            DTypeArg::F32 => DType::F32,
            DTypeArg::F16 => DType::F16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchDType {
    F32,
    F16,
    All,
}

/// `--kind K|all`.
#[derive(Debug, Clone, Copy)]
enum KindSel {
    All,
    One(&'static KindEntry),
}

impl KindSel {
    /// The registry entries selected.
    fn entries(self) -> Vec<&'static KindEntry> {
        match self {
            KindSel::All => kinds::registry().to_vec(),
            KindSel::One(e) => vec![e],
        }
    }

    fn admits(self, name: &str) -> bool {
        match self {
            KindSel::All => true,
            KindSel::One(e) => e.name == name,
        }
    }
}

fn parse_kind(s: &str) -> Result<&'static KindEntry, String> {
    kinds::find(s).map_err(|_| {
        format!(
            "'{s}' is not a registered kind (known: {})",
            kinds::names().join(", ")
        )
    })
}

fn parse_kind_sel(s: &str) -> Result<KindSel, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(KindSel::All);
    }
    parse_kind(s).map(KindSel::One)
}

fn parse_adapter(s: &str) -> Result<AdapterChoice, String> {
    AdapterChoice::parse(s)
        .ok_or_else(|| "not one of auto, software, vulkan, metal, dx12, gl, webgpu".into())
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    Variant::parse(s).ok_or_else(|| "not one of portable, subgroup, coopmat, coopmat2".into())
}

fn parse_shape(s: &str) -> Result<ShapeArg, String> {
    let bad = || format!("'{s}' is not BxHxTxD (or BxHqxHkvxTkxD with --decode)");
    let dims = s
        .split('x')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    let (shape, arg): (_, fn(webattn::Shape) -> ShapeArg) = match dims[..] {
        [b, h, t, d] => (webattn::Shape::new(b, h, t, d), ShapeArg::Forward),
        [b, hq, hkv, tk, d] if tk > 0 => (
            webattn::Shape::gqa(b, hq, hkv, 1, d).with_kv_len(tk),
            ShapeArg::Decode,
        ),
        [_, _, _, 0, _] => return Err(format!("'{s}': a decode cache needs Tk >= 1")),
        _ => return Err(bad()),
    };
    shape.validate().map_err(|e| e.to_string())?;
    Ok(arg(shape))
}

/// The context the device flags ask for. The environment is read first (an unknown
/// `WEBATTN_ADAPTER`, `WEBATTN_VARIANT` or `WEBATTN_F16` value is an error, as the library
/// says); the flags override it.
fn context(dev: &DeviceArgs) -> Result<Context, String> {
    let mut opts = ContextOptions::from_env().map_err(|e| e.to_string())?;
    if let Some(a) = dev.adapter {
        opts.adapter = a;
    }
    if let Some(v) = dev.variant {
        opts.variant = Some(v);
    }
    if let Some(m) = dev.max_wg_mem {
        opts.max_workgroup_storage = Some(m);
    }
    Context::new_blocking(opts).map_err(|e| e.to_string())
}

fn print_adapter(ctx: &Context) {
    let i = ctx.info();
    println!(
        "adapter: {} ({}, {}), variant {:?}",
        i.name, i.backend, i.device_type, i.variant
    );
}

/// The clap command, with the registry's kinds in the help of `--kind` and of each attention
/// option.
fn command() -> clap::Command {
    let kinds: Vec<String> = kinds::registry()
        .iter()
        .map(|e| format!("  {:<16} {}", e.name, e.about))
        .collect();
    let kinds = format!("Attention kinds:\n{}", kinds.join("\n"));
    let mut cmd = Cli::command();
    for sub in ["run", "check", "bench"] {
        let k = kinds.clone();
        cmd = cmd.mut_subcommand(sub, |c| options::annotate(c).after_help(k));
    }
    cmd
}

fn main() -> ExitCode {
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        // Help and version print and exit 0; usage errors exit 2.
        Err(e) => e.exit(),
    };
    let r = match &cli.command {
        Cmd::Info(a) => info::info(a).map(|()| true),
        Cmd::Run(a) => run::run(a).map(|()| true),
        Cmd::Check(a) => check::check(a),
        Cmd::Bench(a) => bench::bench(a).map(|()| true),
        Cmd::Generate(a) => generate::generate(a).map(|()| true),
        Cmd::LmRandomModel(a) => generate::random_model(a).map(|()| true),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("check failed: an error is above its bound or an output is not finite");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
