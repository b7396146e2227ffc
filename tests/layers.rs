//! The crate's modules form layers: no import circle, and no module imports through the
//! crate root's re-exports (which hid circles before). Reads `src/` and needs no GPU.
//!
//! Every `use crate::...` / `use super::...` (outside `#[cfg(test)] mod tests`) must name a
//! module path, and the graph of "module A imports from module B" must be acyclic. A parent
//! declaring its children (`mod x;`, `pub use x::Y`, a registry naming `x::ENTRY`) is not an
//! import. See docs/ARCHITECTURE.md for the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a::b` for src/a/b.rs or src/a/b/mod.rs; "" for lib.rs.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.to_string()];
    };
    let head = &path[..open];
    let body = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let (mut items, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in body.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    items.push(cur);
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .flat_map(|s| expand(&format!("{head}{}", s.trim())))
        .collect()
}

#[test]
fn modules_form_layers_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read");
        let text = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let parent: Vec<&str> = if module.is_empty() {
            vec![]
        } else {
            module.split("::").collect()
        };
        let mut uses = text.split("use ").skip(1);
        for stmt in uses.by_ref() {
            let stmt: String = stmt
                .split(';')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let base = if let Some(rest) = stmt.strip_prefix("crate::") {
                (Vec::new(), rest.to_string())
            } else if let Some(rest) = stmt.strip_prefix("super::") {
                // `super` of a::b is a, whether b is b.rs or b/mod.rs.
                let mut p = parent.clone();
                p.pop();
                (p, rest.to_string())
            } else {
                continue;
            };
            for path in expand(&base.1) {
                let mut segs: Vec<&str> = base.0.clone();
                segs.extend(path.split("::").filter(|s| *s != "self"));
                // The longest prefix that is a module.
                let target = (1..=segs.len())
                    .rev()
                    .map(|n| segs[..n].join("::"))
                    .find(|m| modules.contains_key(m));
                match target {
                    Some(t) if &t != module => {
                        graph.entry(module.clone()).or_default().insert(t);
                    }
                    Some(_) => {}
                    None if base.0.is_empty() && segs.first() != Some(&"*") => {
                        through_root.push(format!("{module}: use crate::{path}"))
                    }
                    None => {}
                }
            }
        }
    }
    assert!(
        through_root.is_empty(),
        "imports through the crate root's re-exports (name the module instead): {through_root:#?}"
    );
    // Depth-first search for a circle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            match state.get(d.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|x| x == d).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(d, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in modules.keys() {
        if !state.contains_key(m.as_str()) {
            let circle = visit(m, &graph, &mut state, &mut Vec::new());
            assert!(
                circle.is_none(),
                "import circle: {}",
                circle.unwrap_or_default().join(" -> ")
            );
        }
    }
    assert!(
        graph.len() > 20,
        "the scan found too few modules: {graph:?}"
    );
}
