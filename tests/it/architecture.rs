//! The floors of ARCHITECTURE.md, enforced: every top-level module of `src/` sits on one floor
//! and imports only modules on lower floors, so an import circle cannot form unnoticed. The
//! table is read from ARCHITECTURE.md itself, so the document and the check cannot drift.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Roots: they wire or test everything and are imported by nothing.
const ROOTS: [&str; 2] = ["main", "fuzz"];

/// `module → floor`, from the rows `| N | a, b, c | ... |` of ARCHITECTURE.md's floor table.
fn floors() -> BTreeMap<String, u32> {
    let text = fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let mut floors = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(floor) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else {
            continue;
        };
        for module in cells[2].split(',').map(|m| m.trim().trim_matches('`')) {
            assert!(
                floors.insert(module.to_string(), floor).is_none(),
                "{module} is on two floors"
            );
        }
    }
    assert!(!floors.is_empty(), "ARCHITECTURE.md has no floor table");
    floors
}

/// The text of `source` without `#[cfg(test)] mod … { … }` blocks and `//` comments: tests
/// may reach anywhere.
fn without_tests(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{').filter(|o| after[..*o].contains("mod ")) else {
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        };
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = open + i + 1;
                break;
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module each `.rs` file of `src/` belongs to, with its text (tests.rs files
/// are test code and left out).
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(ROOT).join("src")];
    let src = stack[0].clone();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                let rel = path.strip_prefix(&src).unwrap();
                let top = rel.components().next().unwrap().as_os_str();
                let top = top.to_string_lossy().trim_end_matches(".rs").to_string();
                out.push((top, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// Every module a source names as `crate::x` (also inside `use crate::{x, y::z}` groups).
fn imports(text: &str, modules: &BTreeMap<String, u32>) -> Vec<String> {
    let mut found = Vec::new();
    let mut take = |word: &str| {
        let name = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
        if modules.contains_key(name) && !found.iter().any(|f| f == name) {
            found.push(name.to_string());
        }
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find("};").unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        take(group[start..j].split("::").next().unwrap_or(""));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            take(group[start..].split("::").next().unwrap_or(""));
        } else {
            let end = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            take(&rest[..end]);
        }
    }
    found
}

#[test]
fn every_module_imports_only_from_lower_floors() {
    let floors = floors();
    let mut breaches = Vec::new();
    let mut unplaced = Vec::new();
    for (module, text) in sources() {
        if ROOTS.contains(&module.as_str()) {
            continue;
        }
        let Some(&floor) = floors.get(&module) else {
            unplaced.push(module);
            continue;
        };
        for import in imports(&without_tests(&text), &floors) {
            if import != module && floors[&import] >= floor {
                breaches.push(format!(
                    "{module} (floor {floor}) imports {import} (floor {})",
                    floors[&import]
                ));
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules missing from ARCHITECTURE.md's floor table: {unplaced:?}"
    );
    breaches.sort();
    breaches.dedup();
    assert!(
        breaches.is_empty(),
        "imports that break the floors (a circle in the making):\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_check_sees_grouped_imports_and_skips_test_code() {
    let floors: BTreeMap<String, u32> = [("a", 1), ("b", 2), ("c", 3)]
        .map(|(m, f)| (m.to_string(), f))
        .into();
    let text = "use crate::{a::X, b::{Y, Z}};\n// crate::c in a comment\n\
                #[cfg(test)]\nmod tests {\n    use crate::c::W;\n}\nfn f() { crate::a::g(); }\n";
    assert_eq!(imports(&without_tests(text), &floors), ["a", "b"]);
}
