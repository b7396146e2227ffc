//! `webattn`: the command-line program.
//!
//! ```text
//! webattn info                         adapter, features, limits, tiles per head dim
//! webattn run -i qkv.safetensors -o out.safetensors --kind stick-breaking [options]
//! webattn check [--kind all] [shape options]   GPU against the f64 reference, errors printed
//! webattn bench [--shapes BxHxTxD,...] [--reps 20] [--json PATH]   GPU-timestamped benchmark
//! ```
//! Every command takes `--adapter auto|software|vulkan|metal|dx12|gl` (or WEBATTN_ADAPTER).
//! With no GPU it runs on the software adapter (Mesa lavapipe on Linux).

mod bench;

use std::collections::HashMap;
use std::process::ExitCode;

use webattn::{
    Attention, Context, ContextOptions, DType, Kind, Remainder, Shape, SigmoidBias, SigmoidOptions,
    SoftmaxOptions, StickBreakingOptions,
};

const USAGE: &str = "\
webattn: tiled stick-breaking, softmax and sigmoid attention on WebGPU (wgpu)

USAGE:
  webattn info
  webattn run   -i IN.safetensors -o OUT.safetensors --kind KIND [OPTIONS]
  webattn check --sweep [--dtype f32|f16]   every kind and option over odd shapes; largest error per kind
  webattn check [--kind KIND|all] [--batch B --heads HQ --kv-heads HKV --q-len TQ --kv-len TK --dim D --v-dim DV] [--seed N] [OPTIONS]

  webattn bench [--shapes 1x16x1024x64,...] [--kind KIND|all] [--dtype f32|f16|all] [--reps N] [--json PATH]

KIND: softmax | sigmoid | stick-breaking

OPTIONS:
  --adapter NAME        auto | software | vulkan | metal | dx12 | gl (default: $WEBATTN_ADAPTER or auto)
  --variant NAME        portable | subgroup | coopmat: force a kernel variant (default: $WEBATTN_VARIANT or the fastest)
  --max-wg-mem BYTES    plan tiles for at most this much workgroup memory (tuning, tests)
  --dtype f32|f16       check: storage type (tolerance 1e-5 or 5e-3, SPEC.md section 6)
  --causal              causal mask (softmax, sigmoid; stick-breaking is always causal)
  --window W            sliding window of W keys
  --scale S             logit scale (default 1/sqrt(D))
  --sinks a,b,...       softmax: per-head sink logits (or a tensor 'sinks' [Hq] in the input file)
  --bias B|minus-log-n  sigmoid bias (default minus-log-n)
  --normalize           sigmoid: row-normalised variant
  --attend-current      stick-breaking: the current token takes a share too
  --remainder drop|current   stick-breaking remainder policy (default drop)
  --weights             run: also write the attention weights 'weights' [B,Hq,Tq,Tk]

run reads tensors q [B,Hq,Tq,D], k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv] (F32, F16 or BF16) and writes
o (and lse or rem) as F32.";

struct Args {
    cmd: String,
    flags: HashMap<String, String>,
}

const SWITCHES: [&str; 6] = [
    "causal",
    "normalize",
    "attend-current",
    "weights",
    "help",
    "sweep",
];

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_else(|| "help".into());
    let mut flags = HashMap::new();
    while let Some(a) = it.next() {
        let key = match a.as_str() {
            "-i" => "input".to_string(),
            "-o" => "output".to_string(),
            "-h" => "help".to_string(),
            s if s.starts_with("--") => s[2..].to_string(),
            s => return Err(format!("unexpected argument '{s}'")),
        };
        if SWITCHES.contains(&key.as_str()) {
            flags.insert(key, String::new());
        } else {
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            flags.insert(key, v);
        }
    }
    Ok(Args { cmd, flags })
}

impl Args {
    fn get<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.flags.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{k}: cannot parse '{v}'")),
        }
    }
    fn has(&self, k: &str) -> bool {
        self.flags.contains_key(k)
    }
}

fn context(args: &Args) -> Result<Context, String> {
    let mut opts = ContextOptions::from_env();
    if let Some(a) = args.flags.get("adapter") {
        opts.adapter = webattn::AdapterChoice::parse(a).ok_or(format!("unknown adapter '{a}'"))?;
    }
    if let Some(v) = args.flags.get("variant") {
        opts.variant = Some(webattn::Variant::parse(v).ok_or(format!(
            "--variant: '{v}' is not portable, subgroup or coopmat"
        ))?);
    }
    if args.has("max-wg-mem") {
        opts.max_workgroup_storage = Some(args.get("max-wg-mem", 0u32)?);
    }
    Context::new_blocking(opts).map_err(|e| e.to_string())
}

fn attention(
    args: &Args,
    kind: &str,
    hq: usize,
    file_sinks: Option<Vec<f32>>,
) -> Result<Attention, String> {
    let causal = args.has("causal");
    let kind = match kind {
        "softmax" => {
            let sinks = match args.flags.get("sinks") {
                Some(s) => Some(
                    s.split(',')
                        .map(|x| {
                            x.trim()
                                .parse::<f32>()
                                .map_err(|_| format!("--sinks: bad '{x}'"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                None => file_sinks,
            };
            if let Some(s) = &sinks {
                if s.len() != hq {
                    return Err(format!("{} sink logits for {hq} query heads", s.len()));
                }
            }
            Kind::Softmax(SoftmaxOptions { causal, sinks })
        }
        "sigmoid" => {
            let bias = match args.flags.get("bias").map(String::as_str) {
                None | Some("minus-log-n") => SigmoidBias::MinusLogKeys,
                Some(b) => SigmoidBias::Value(b.parse().map_err(|_| format!("--bias: bad '{b}'"))?),
            };
            Kind::Sigmoid(SigmoidOptions {
                causal,
                bias,
                normalize: args.has("normalize"),
            })
        }
        "stick-breaking" | "stick_breaking" | "sb" => {
            let remainder = match args.flags.get("remainder").map(String::as_str) {
                None | Some("drop") => Remainder::Drop,
                Some("current") => Remainder::ToCurrent,
                Some(r) => return Err(format!("--remainder: '{r}' is not drop or current")),
            };
            Kind::StickBreaking(StickBreakingOptions {
                attend_current: args.has("attend-current"),
                remainder,
            })
        }
        k => {
            return Err(format!(
                "unknown kind '{k}' (softmax, sigmoid, stick-breaking)"
            ))
        }
    };
    let mut a = Attention::of(kind);
    if args.has("scale") {
        a.scale = Some(args.get("scale", 0.0f32)?);
    }
    if args.has("window") {
        a.window = Some(args.get("window", 0u32)?);
    }
    Ok(a)
}

fn info(args: &Args) -> Result<(), String> {
    let ctx = context(args)?;
    println!("{}", ctx.info());
    println!(
        "\nforward kernels per head dim and dtype (variant, BQ rows x BK keys, workgroup memory):"
    );
    for d in [16, 32, 64, 80, 96, 128, 256] {
        for dtype in [DType::F32, DType::F16] {
            match ctx.forward_tiles(dtype, d, d) {
                Ok(t) => println!(
                    "  D={d:<4} {:<4} {:<10} BQ={:<3} BK={:<3} {} bytes",
                    if dtype == DType::F32 { "f32" } else { "f16" },
                    format!("{:?}", t.variant),
                    t.bq,
                    t.bk,
                    t.workgroup_bytes()
                ),
                Err(e) => println!("  D={d:<4} {e}"),
            }
        }
    }
    Ok(())
}

fn read_tensor(
    st: &safetensors::SafeTensors,
    name: &str,
) -> Result<(Vec<usize>, Vec<f32>), String> {
    use safetensors::Dtype;
    let t = st
        .tensor(name)
        .map_err(|e| format!("tensor '{name}': {e}"))?;
    let d = t.data();
    let data: Vec<f32> = match t.dtype() {
        Dtype::F32 => bytemuck::pod_collect_to_vec(d),
        Dtype::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(d)
            .into_iter()
            .map(f32::from)
            .collect(),
        Dtype::BF16 => bytemuck::pod_collect_to_vec::<u8, half::bf16>(d)
            .into_iter()
            .map(f32::from)
            .collect(),
        other => {
            return Err(format!(
                "tensor '{name}' is {other:?}; F32, F16 or BF16 expected"
            ))
        }
    };
    Ok((t.shape().to_vec(), data))
}

fn run(args: &Args) -> Result<(), String> {
    let input = args
        .flags
        .get("input")
        .ok_or("run needs -i IN.safetensors")?;
    let output = args
        .flags
        .get("output")
        .ok_or("run needs -o OUT.safetensors")?;
    let kind = args.flags.get("kind").ok_or("run needs --kind")?;
    let bytes = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("{input}: {e}"))?;
    let (qs, q) = read_tensor(&st, "q")?;
    let (ks, k) = read_tensor(&st, "k")?;
    let (vs, v) = read_tensor(&st, "v")?;
    let shape = Shape::from_shapes(&qs, &ks, &vs).map_err(|e| e.to_string())?;
    let file_sinks = if st.names().contains(&"sinks") {
        Some(read_tensor(&st, "sinks")?.1)
    } else {
        None
    };
    let attn = attention(args, kind, shape.q_heads, file_sinks)?;
    let ctx = context(args)?;
    eprintln!("adapter: {} ({})", ctx.info().name, ctx.info().backend);
    let out = pollster::block_on(ctx.attention_f32(&attn, &shape, &q, &k, &v))
        .map_err(|e| e.to_string())?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> =
        vec![("o".into(), shape.o().to_vec(), out.o)];
    if let Some(l) = out.lse {
        tensors.push(("lse".into(), shape.rows().to_vec(), l));
    }
    if let Some(r) = out.rem {
        tensors.push(("rem".into(), shape.rows().to_vec(), r));
    }
    if args.has("weights") {
        let a = pollster::block_on(ctx.weights_f32(&attn, &shape, &q, &k, &v))
            .map_err(|e| e.to_string())?;
        tensors.push(("weights".into(), shape.weights().to_vec(), a));
    }
    let views = tensors
        .iter()
        .map(|(n, s, d)| {
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                s.clone(),
                bytemuck::cast_slice(d),
            )
            .map(|v| (n.clone(), v))
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, None, std::path::Path::new(output))
        .map_err(|e| format!("{output}: {e}"))?;
    eprintln!(
        "wrote {} ({})",
        output,
        tensors
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Element count of a tensor shape, refused if it cannot fit one device buffer (before any
/// host memory is spent on it).
pub fn elements(shape: [usize; 4], ctx: &Context) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| (n as u64).saturating_mul(4) <= ctx.info().max_buffer)
        .ok_or_else(|| {
            format!("a tensor of shape {shape:?} does not fit one buffer of this device")
        })
}

/// Small deterministic generator for `check` and `bench` inputs (never zeros).
pub fn random(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            if x == 0.0 {
                0.25
            } else {
                x
            }
        })
        .collect()
}

fn rel_errors(got: &[f32], want: &[f64]) -> (f64, f64, bool) {
    // Magnitudes below f32's normal range compare as 0: f32 storage cannot hold them.
    let flush = |x: f64| {
        if x.abs() < f32::MIN_POSITIVE as f64 {
            0.0
        } else {
            x
        }
    };
    let (mut num, mut den, mut max_abs, mut finite) = (0.0, 0.0, 0.0f64, true);
    for (&g, &w) in got.iter().zip(want) {
        let (g, w) = (flush(g as f64) as f32, flush(w));
        if !w.is_finite() {
            finite &= g as f64 == w;
            continue;
        }
        finite &= g.is_finite();
        let d = g as f64 - w;
        num += d * d;
        den += w * w;
        max_abs = max_abs.max(d.abs());
    }
    ((num / den.max(f64::MIN_POSITIVE)).sqrt(), max_abs, finite)
}

/// Runs `attn` on the GPU and on the f64 reference; (output name, (rel L2, max abs, finite))
/// for o and lse or rem.
type Errors = Vec<(&'static str, (f64, f64, bool))>;
fn gpu_vs_reference(
    ctx: &Context,
    attn: &Attention,
    shape: &Shape,
    [q, k, v]: [&[f32]; 3],
    f16: bool,
) -> Result<Errors, String> {
    let got = if f16 {
        // The inputs were rounded to f16 by the caller, so the reference sees the same values.
        let h = |x: &[f32]| {
            x.iter()
                .map(|&y| half::f16::from_f32(y))
                .collect::<Vec<_>>()
        };
        pollster::block_on(ctx.attention_f16(attn, shape, &h(q), &h(k), &h(v)))
    } else {
        pollster::block_on(ctx.attention_f32(attn, shape, q, k, v))
    }
    .map_err(|e| e.to_string())?;
    let want = webattn::reference(attn, shape, q, k, v).map_err(|e| e.to_string())?;
    let mut rows = vec![("o", rel_errors(&got.o, &want.o))];
    if let (Some(g), Some(w)) = (&got.lse, &want.lse) {
        rows.push(("lse", rel_errors(g, w)));
    }
    if let (Some(g), Some(w)) = (&got.rem, &want.rem) {
        rows.push(("rem", rel_errors(g, w)));
    }
    Ok(rows)
}

fn print_adapter(ctx: &Context) {
    let i = ctx.info();
    println!("adapter: {} ({}, {})", i.name, i.backend, i.device_type);
}

/// `check --sweep [--dtype f32|f16]`: every kind and main option over odd shapes (T = 1, tile
/// edges, every head dim, GQA, Tq < Tk, Tq > Tk); prints the largest relative error per kind
/// and output. f16 runs the inputs rounded to f16 (the reference sees the same values) and
/// holds them to SPEC.md's 5e-3; f32 to 1e-5.
fn sweep(args: &Args) -> Result<bool, String> {
    let ctx = context(args)?;
    print_adapter(&ctx);
    let (f16, tol) = check_dtype(args)?;
    let mut seed = args.get("seed", 0x5eed_u64)?;
    println!("seed: {seed}");
    let mut shapes = Vec::new();
    for t in [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129] {
        shapes.push(Shape::new(1, 2, t, 64));
    }
    for d in [16, 32, 64, 80, 96, 128, 256, 8, 40] {
        shapes.push(Shape {
            kv_heads: 1,
            ..Shape::new(1, 2, 37, d)
        });
    }
    for (tq, tk) in [(1, 90), (7, 70), (50, 50), (40, 20)] {
        shapes.push(Shape {
            batch: 2,
            q_heads: 8,
            kv_heads: 2,
            q_len: tq,
            kv_len: tk,
            head_dim: 32,
            v_dim: 32,
        });
    }
    let variants: Vec<(&str, Attention)> = vec![
        ("softmax", Attention::softmax()),
        ("softmax", Attention::softmax().causal(true)),
        ("softmax", Attention::softmax().causal(true).window(9)),
        ("sigmoid", Attention::sigmoid()),
        ("sigmoid", Attention::sigmoid().causal(true)),
        (
            "sigmoid",
            Attention::of(Kind::Sigmoid(SigmoidOptions {
                causal: true,
                bias: SigmoidBias::Value(0.0),
                normalize: true,
            })),
        ),
        ("stick-breaking", Attention::stick_breaking()),
        (
            "stick-breaking",
            Attention::of(Kind::StickBreaking(StickBreakingOptions {
                attend_current: true,
                remainder: Remainder::ToCurrent,
            })),
        ),
        ("stick-breaking", Attention::stick_breaking().window(9)),
        // Extreme logits: |z| up to about 1e3.
        ("softmax", Attention::softmax().causal(true).scale(200.0)),
        ("sigmoid", Attention::sigmoid().causal(true).scale(200.0)),
        ("stick-breaking", Attention::stick_breaking().scale(200.0)),
    ];
    let mut worst: Vec<(String, f64)> = Vec::new();
    let mut note = |key: String, e: f64| match worst.iter_mut().find(|w| w.0 == key) {
        Some(w) => w.1 = w.1.max(e),
        None => worst.push((key, e)),
    };
    let mut all_ok = true;
    let mut runs = 0;
    let mut variants_seen = std::collections::BTreeSet::new();
    let n = |s: [usize; 4]| s.iter().product::<usize>();
    for shape in &shapes {
        let q = round_to(f16, random(n(shape.q()), &mut seed));
        let k = round_to(f16, random(n(shape.k()), &mut seed));
        let v = round_to(f16, random(n(shape.v()), &mut seed));
        let variant = ctx
            .forward_tiles(
                if f16 { DType::F16 } else { DType::F32 },
                shape.head_dim,
                shape.v_dim,
            )
            .map_err(|e| e.to_string())?
            .variant;
        variants_seen.insert(format!("{variant:?}"));
        for (name, attn) in &variants {
            for (o, (rel, _, finite)) in gpu_vs_reference(&ctx, attn, shape, [&q, &k, &v], f16)? {
                all_ok &= finite && rel < tol;
                note(
                    format!("{name} {o}"),
                    if finite { rel } else { f64::INFINITY },
                );
            }
            runs += 1;
        }
    }
    println!(
        "{runs} GPU runs against the f64 reference, {} storage, kernel variants {variants_seen:?}\n",
        if f16 { "f16" } else { "f32" }
    );
    println!("| kind and output | largest relative L2 error | tolerance |\n|---|---|---|");
    for (k, e) in worst {
        println!("| {k} | {e:.3e} | {tol:e} |");
    }
    Ok(all_ok)
}

/// `--dtype f32|f16` of `check`: (is f16, relative L2 tolerance of SPEC.md section 6).
fn check_dtype(args: &Args) -> Result<(bool, f64), String> {
    match args.flags.get("dtype").map(String::as_str) {
        None | Some("f32") => Ok((false, 1e-5)),
        Some("f16") => Ok((true, 5e-3)),
        Some(d) => Err(format!("--dtype: '{d}' is not f32 or f16 (check)")),
    }
}

/// Rounds values to f16 (and back) when `f16`.
fn round_to(f16: bool, x: Vec<f32>) -> Vec<f32> {
    if f16 {
        x.into_iter()
            .map(|y| half::f16::from_f32(y).to_f32())
            .collect()
    } else {
        x
    }
}

fn check(args: &Args) -> Result<bool, String> {
    if args.has("sweep") {
        return sweep(args);
    }
    let hq = args.get("heads", 4usize)?;
    let tq = args.get("q-len", 128usize)?;
    let d = args.get("dim", 64usize)?;
    let shape = Shape {
        batch: args.get("batch", 1usize)?,
        q_heads: hq,
        kv_heads: args.get("kv-heads", hq)?,
        q_len: tq,
        kv_len: args.get("kv-len", tq)?,
        head_dim: d,
        v_dim: args.get("v-dim", d)?,
    };
    shape.validate().map_err(|e| e.to_string())?;
    let kind = args.flags.get("kind").map(String::as_str).unwrap_or("all");
    let kinds: Vec<&str> = if kind == "all" {
        vec!["softmax", "sigmoid", "stick-breaking"]
    } else {
        vec![kind]
    };
    let (f16, tol) = check_dtype(args)?;
    let ctx = context(args)?;
    print_adapter(&ctx);
    println!("shape: {shape:?}, {}", if f16 { "f16" } else { "f32" });
    let mut seed = args.get("seed", 0x5eed_u64)?;
    println!("seed: {seed}");
    for t in [shape.q(), shape.k(), shape.v()] {
        elements(t, &ctx)?;
    }
    let n = |s: [usize; 4]| s.iter().product::<usize>();
    let q = round_to(f16, random(n(shape.q()), &mut seed));
    let k = round_to(f16, random(n(shape.k()), &mut seed));
    let v = round_to(f16, random(n(shape.v()), &mut seed));
    let dtype = if f16 { DType::F16 } else { DType::F32 };
    let tiles = ctx
        .forward_tiles(dtype, shape.head_dim, shape.v_dim)
        .map_err(|e| e.to_string())?;
    println!(
        "kernel: {:?}, BQ={} BK={}",
        tiles.variant, tiles.bq, tiles.bk
    );
    println!("\n| kind | output | rel L2 error | max abs error | tolerance | result |");
    println!("|---|---|---|---|---|---|");
    let mut all_ok = true;
    for kind in kinds {
        let attn = attention(args, kind, hq, None)?;
        for (name, (rel, abs, finite)) in gpu_vs_reference(&ctx, &attn, &shape, [&q, &k, &v], f16)?
        {
            let ok = finite && rel < tol;
            all_ok &= ok;
            println!(
                "| {kind} | {name} | {rel:.3e} | {abs:.3e} | {tol:e} | {} |",
                if ok { "ok" } else { "FAIL" }
            );
        }
    }
    Ok(all_ok)
}

fn bench_cmd(args: &Args) -> Result<(), String> {
    let spec = args
        .flags
        .get("shapes")
        .map(String::as_str)
        .unwrap_or("1x16x1024x64,1x16x4096x64,1x16x16384x64,4x12x4096x128");
    let shapes = spec
        .split(',')
        .map(|s| {
            let d = s
                .split('x')
                .map(|x| x.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format!("--shapes: '{s}' is not BxHxTxD"))?;
            match d[..] {
                [b, h, t, dim] => {
                    let shape = Shape::new(b, h, t, dim);
                    shape.validate().map_err(|e| e.to_string())?;
                    Ok(shape)
                }
                _ => Err(format!("--shapes: '{s}' is not BxHxTxD")),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let kinds: Vec<&'static str> = match args.flags.get("kind").map(String::as_str).unwrap_or("all")
    {
        "all" => vec!["softmax", "sigmoid", "stick-breaking"],
        "softmax" => vec!["softmax"],
        "sigmoid" => vec!["sigmoid"],
        "stick-breaking" | "stick_breaking" | "sb" => vec!["stick-breaking"],
        k => {
            return Err(format!(
                "--kind: unknown kind '{k}' (softmax, sigmoid, stick-breaking, all)"
            ))
        }
    };
    let dtypes = match args.flags.get("dtype").map(String::as_str).unwrap_or("all") {
        "f32" => vec![DType::F32],
        "f16" => vec![DType::F16],
        "all" => vec![DType::F32, DType::F16],
        d => return Err(format!("--dtype: unknown dtype '{d}' (f32, f16, all)")),
    };
    let reps = args.get("reps", 20u32)?;
    if !(20..=2048).contains(&reps) {
        return Err(format!(
            "--reps {reps}: give 20 to 2048 (medians need 20; timestamps cap at 4096 queries)"
        ));
    }
    let ctx = context(args)?;
    let rows = bench::run(&ctx, &shapes, &kinds, &dtypes, reps)?;
    println!("{}", bench::markdown(&ctx, &rows));
    if let Some(p) = args.flags.get("json") {
        std::fs::write(p, bench::json(&ctx, &rows)).map_err(|e| format!("{p}: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match args.cmd.as_str() {
        "info" => info(&args).map(|_| true),
        "run" => run(&args).map(|_| true),
        "check" => check(&args),
        "bench" => bench_cmd(&args).map(|_| true),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(true)
        }
        c => Err(format!("unknown command '{c}'\n\n{USAGE}")),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("check failed: an error is above tolerance or not finite");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
