//! The layering rule, checked: no cycle between the top-level modules of `src/`. A module
//! uses another when its production code (comments and test modules left out) names
//! `crate::<other>`.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    type Graph = BTreeMap<String, BTreeSet<String>>;

    /// The production code of a file: up to its test module, without comment lines.
    fn production(text: &str) -> String {
        let end = text.find("#[cfg(test)]").unwrap_or(text.len());
        text[..end]
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn uses(text: &str) -> BTreeSet<String> {
        text.split("crate::")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    fn module_of(src: &Path, file: &Path) -> Option<String> {
        let first = file.strip_prefix(src).ok()?.components().next()?;
        let name = first.as_os_str().to_str()?;
        Some(name.trim_end_matches(".rs").to_string())
    }

    fn graph(src: &Path) -> Graph {
        let mut files = vec![src.to_path_buf()];
        let mut graph = Graph::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                let entries = std::fs::read_dir(&path).unwrap();
                files.extend(entries.map(|e| e.unwrap().path()));
                continue;
            }
            let Some(module) = module_of(src, &path) else {
                continue;
            };
            if module == "bin" || module == "lib" || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = production(&std::fs::read_to_string(&path).unwrap());
            let used = graph.entry(module.clone()).or_default();
            used.extend(uses(&text).into_iter().filter(|m| *m != module));
        }
        graph
    }

    /// A cycle through `from`, if there is one: the path back to it.
    fn cycle_through(graph: &Graph, from: &str) -> Option<Vec<String>> {
        let mut stack = vec![vec![from.to_string()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in graph.get(last).into_iter().flatten() {
                if next == from {
                    return Some([path.clone(), vec![next.clone()]].concat());
                }
                if graph.contains_key(next) && seen.insert(next.clone()) {
                    stack.push([path.clone(), vec![next.clone()]].concat());
                }
            }
        }
        None
    }

    #[test]
    fn no_cycle_between_top_level_modules() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let graph = graph(&src);
        assert!(
            graph.contains_key("gate") && graph["gate"].contains("access"),
            "{graph:?}"
        );
        for module in graph.keys() {
            if let Some(cycle) = cycle_through(&graph, module) {
                panic!("a cycle between top-level modules: {}", cycle.join(" → "));
            }
        }
    }

    #[test]
    fn a_cycle_is_found() {
        let mut graph = Graph::new();
        graph.insert("a".into(), ["b".to_string()].into());
        graph.insert("b".into(), ["c".to_string()].into());
        graph.insert("c".into(), ["a".to_string()].into());
        assert_eq!(cycle_through(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
        graph.insert("c".into(), BTreeSet::new());
        assert!(cycle_through(&graph, "a").is_none());
    }
}
