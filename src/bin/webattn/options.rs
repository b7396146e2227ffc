//! Attention options on the command line. The flags a user gives become one JSON object for
//! `Attention::from_json`; the kind comes from the registry, and which options a kind has is
//! read off its JSON form (`KindEntry::default().to_json()`), never listed here per kind.

use clap::Args;
use serde_json::{Map, Value};
use webattn::kinds::{self, KindEntry};
use webattn::Attention;

/// Remainder policy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RemainderArg {
    /// Keep the remainder out of o.
    Drop,
    /// Give it to the current token's value.
    #[value(alias = "to-current")]
    Current,
}

/// The attention options. Each maps to one key of `Attention::from_json` (see [`FLAGS`]).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Attention options")]
pub struct AttnArgs {
    /// Causal mask, bottom-right aligned
    #[arg(long)]
    pub causal: bool,
    /// Sliding window of W keys
    #[arg(long, value_name = "W")]
    pub window: Option<u32>,
    /// Logit scale [default: 1/sqrt(D)]
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub scale: Option<String>,
    /// Per-query-head sink logits, one per query head (overrides a 'sinks' tensor of the input)
    #[arg(long, value_name = "A,B,...", allow_hyphen_values = true)]
    pub sinks: Option<String>,
    /// Bias b of sigmoid(z + b): a number or minus-log-n (-ln Tk) [default: minus-log-n]
    #[arg(long, value_name = "B|minus-log-n", allow_hyphen_values = true)]
    pub bias: Option<String>,
    /// Row-normalised weights
    #[arg(long)]
    pub normalize: bool,
    /// The current token takes a share too
    #[arg(long)]
    pub attend_current: bool,
    /// Remainder policy [default: drop]
    #[arg(long, value_enum)]
    pub remainder: Option<RemainderArg>,
}

/// Each attention flag (its clap id, as written) and its key in `Attention::from_json`.
const FLAGS: [(&str, &str, &str); 8] = [
    ("causal", "--causal", "causal"),
    ("window", "--window", "window"),
    ("scale", "--scale", "scale"),
    ("sinks", "--sinks", "sinks"),
    ("bias", "--bias", "bias"),
    ("normalize", "--normalize", "normalize"),
    ("attend_current", "--attend-current", "attendCurrent"),
    ("remainder", "--remainder", "remainder"),
];

/// Keys every kind takes (read by `Attention::from_json` itself).
const TOP_LEVEL: [&str; 2] = ["scale", "window"];

/// The option keys `entry`'s kind takes: its JSON form's keys, plus scale and window.
pub fn keys(entry: &KindEntry) -> Vec<String> {
    let mut keys: Vec<String> = match (entry.default)().to_json() {
        Value::Object(m) => m.keys().filter(|k| *k != "kind").cloned().collect(),
        _ => Vec::new(),
    };
    for k in TOP_LEVEL {
        if !keys.iter().any(|x| x == k) {
            keys.push(k.into());
        }
    }
    keys
}

/// Whether `entry`'s kind has the option `key`.
pub fn accepts(entry: &KindEntry, key: &str) -> bool {
    keys(entry).iter().any(|k| k == key)
}

fn flag_of(key: &str) -> String {
    FLAGS
        .iter()
        .find(|f| f.2 == key)
        .map_or_else(|| format!("'{key}'"), |f| f.1.to_string())
}

fn number(flag: &str, s: &str) -> Result<f32, String> {
    let x: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: '{s}' is not a number"))?;
    if !x.is_finite() {
        return Err(format!("{flag}: '{s}' is not a finite number"));
    }
    Ok(x)
}

impl AttnArgs {
    /// (flag, JSON key, value) of every option given, values checked.
    fn given(&self) -> Result<Vec<(&'static str, &'static str, Value)>, String> {
        let mut out = Vec::new();
        let mut put = |i: usize, v: Value| out.push((FLAGS[i].1, FLAGS[i].2, v));
        if self.causal {
            put(0, true.into());
        }
        if let Some(w) = self.window {
            put(1, w.into());
        }
        if let Some(s) = &self.scale {
            put(2, number("--scale", s)?.into());
        }
        if let Some(s) = &self.sinks {
            let v = s
                .split(',')
                .map(|x| number("--sinks", x).map(Value::from))
                .collect::<Result<Vec<_>, _>>()?;
            put(3, Value::Array(v));
        }
        if let Some(b) = &self.bias {
            let v = match b.trim() {
                "minus-log-n" => Value::from("minus-log-n"),
                x => match x.parse::<f32>() {
                    // JSON has no infinity; the library clamps biases to +-1e30 anyway.
                    Ok(y) if y.is_infinite() => Value::from(y.signum() * f32::MAX),
                    Ok(y) if y.is_finite() => Value::from(y),
                    _ => return Err(format!("--bias: '{b}' is not a number or minus-log-n")),
                },
            };
            put(4, v);
        }
        if self.normalize {
            put(5, true.into());
        }
        if self.attend_current {
            put(6, true.into());
        }
        if let Some(r) = self.remainder {
            let r = match r {
                RemainderArg::Drop => "drop",
                RemainderArg::Current => "to-current",
            };
            put(7, r.into());
        }
        Ok(out)
    }

    /// No attention option was given.
    pub fn is_empty(&self) -> bool {
        self.given().is_ok_and(|g| g.is_empty())
    }

    /// The flags given, for messages.
    pub fn describe(&self) -> String {
        self.given()
            .unwrap_or_default()
            .iter()
            .map(|(flag, _, v)| match v {
                Value::Bool(true) => flag.to_string(),
                Value::Array(a) => format!(
                    "{flag} {}",
                    a.iter().map(Value::to_string).collect::<Vec<_>>().join(",")
                ),
                Value::String(s) => format!("{flag} {s}"),
                v => format!("{flag} {v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The attention of `entry`'s kind with the options given. `file_sinks` (a `sinks` tensor
    /// of an input file) is used where the kind takes sinks and `--sinks` was not given.
    ///
    /// An option the kind does not have is an error naming the flag and the kind.
    pub fn attention(
        &self,
        entry: &'static KindEntry,
        file_sinks: Option<Vec<f32>>,
    ) -> Result<Attention, String> {
        let given = self.given()?;
        let keys = keys(entry);
        if let Some((flag, _, _)) = given.iter().find(|g| !keys.iter().any(|k| k == g.1)) {
            let has: Vec<String> = keys.iter().map(|k| flag_of(k)).collect();
            return Err(format!(
                "{flag} does not apply to {} attention (its options: {})",
                entry.name,
                has.join(", ")
            ));
        }
        let mut map = Map::new();
        map.insert("kind".into(), entry.name.into());
        for (_, key, v) in given {
            map.insert(key.into(), v);
        }
        if let Some(s) = file_sinks {
            if keys.iter().any(|k| k == "sinks") && !map.contains_key("sinks") {
                let v = s
                    .iter()
                    .map(|&x| {
                        x.is_finite()
                            .then(|| Value::from(x))
                            .ok_or_else(|| format!("the input's 'sinks' tensor holds {x}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                map.insert("sinks".into(), Value::Array(v));
            }
        }
        Attention::from_json(Value::Object(map)).map_err(|e| e.to_string())
    }
}

/// Adds to the help of each attention flag the kinds that take it (from the registry).
pub fn annotate(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd;
    for (id, _, key) in FLAGS {
        if TOP_LEVEL.contains(&key) || cmd.get_arguments().all(|a| a.get_id() != id) {
            continue;
        }
        let takers: Vec<&str> = kinds::registry()
            .iter()
            .filter(|e| accepts(e, key))
            .map(|e| e.name)
            .collect();
        cmd = cmd.mut_arg(id, |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} [kinds: {}]", takers.join(", ")))
        });
    }
    cmd
}
