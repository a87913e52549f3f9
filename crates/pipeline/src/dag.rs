//! The `needs` graph: reference checks, cycle detection, ordering.
//!
//! These functions only know stage names and their `needs`; turning a
//! [`DagError`] into a located message is the caller's job.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use indexmap::IndexMap;
use sluice_types::text::closest;

use crate::model::Stage;

/// A problem with the `needs` graph. `index` is the position in the
/// stage's `needs` list of the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagError {
    /// `needs` names a stage that does not exist.
    UnknownNeed {
        /// The stage with the bad entry.
        stage: String,
        /// Position in its `needs`.
        index: usize,
        /// The name that is not a stage.
        need: String,
        /// The closest existing stage name, if one is close enough.
        suggestion: Option<String>,
    },
    /// A stage needs itself.
    SelfNeed {
        /// The stage.
        stage: String,
        /// Position in its `needs`.
        index: usize,
    },
    /// A stage needs the same stage twice.
    DuplicateNeed {
        /// The stage.
        stage: String,
        /// Position of the second occurrence in its `needs`.
        index: usize,
        /// The repeated name.
        need: String,
    },
    /// The graph has a cycle.
    Cycle {
        /// The stages around the cycle, first one repeated at the end
        /// (`a -> b -> a` is `[a, b, a]`); each needs the next.
        cycle: Vec<String>,
        /// The stage whose `needs` entry closes the cycle.
        stage: String,
        /// Position of that entry.
        index: usize,
    },
}

/// Checks every `needs` entry and that the graph has no cycle; reports the
/// first problem in file order.
pub fn check(stages: &IndexMap<String, Stage>) -> Result<(), DagError> {
    for (name, stage) in stages {
        for (index, need) in stage.needs.iter().enumerate() {
            if need == name {
                return Err(DagError::SelfNeed {
                    stage: name.clone(),
                    index,
                });
            }
            if !stages.contains_key(need) {
                return Err(DagError::UnknownNeed {
                    stage: name.clone(),
                    index,
                    need: need.clone(),
                    suggestion: closest(need, stages.keys().map(String::as_str)).map(str::to_owned),
                });
            }
            if stage.needs[..index].contains(need) {
                return Err(DagError::DuplicateNeed {
                    stage: name.clone(),
                    index,
                    need: need.clone(),
                });
            }
        }
    }
    find_cycle(stages)
}

/// Depth-first search for a back edge. Iterative, so that a long chain of
/// stages cannot overflow the stack.
fn find_cycle(stages: &IndexMap<String, Stage>) -> Result<(), DagError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; stages.len()];
    for start in 0..stages.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // (stage index, next `needs` entry to follow)
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let needs = stages
                .get_index(node)
                .map_or(&[][..], |(_, s)| &s.needs[..]);
            let Some(need) = needs.get(*next) else {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            };
            let edge = *next;
            *next += 1;
            let Some(target) = stages.get_index_of(need) else {
                continue;
            };
            match marks[target] {
                Mark::New => {
                    marks[target] = Mark::OnPath;
                    path.push((target, 0));
                }
                Mark::OnPath => {
                    let name = |i: usize| stages.get_index(i).map(|(n, _)| n.clone());
                    let from = path.iter().position(|&(n, _)| n == target).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().filter_map(|&(n, _)| name(n)).collect();
                    cycle.extend(name(target));
                    return Err(DagError::Cycle {
                        cycle,
                        stage: name(node).unwrap_or_default(),
                        index: edge,
                    });
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}

/// Stage names with every stage after all of its `needs`, ties broken by
/// file order (Kahn's algorithm with a min-heap of file positions).
pub fn topo_order(stages: &IndexMap<String, Stage>) -> Vec<&str> {
    let mut waiting_on: Vec<usize> = Vec::with_capacity(stages.len());
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for (index, stage) in stages.values().enumerate() {
        let known: Vec<usize> = stage
            .needs
            .iter()
            .filter_map(|need| stages.get_index_of(need))
            .collect();
        waiting_on.push(known.len());
        for need in known {
            dependents.entry(need).or_default().push(index);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = waiting_on
        .iter()
        .enumerate()
        .filter(|(_, &count)| count == 0)
        .map(|(index, _)| Reverse(index))
        .collect();
    let mut order = Vec::with_capacity(stages.len());
    let mut placed = vec![false; stages.len()];
    while let Some(Reverse(index)) = ready.pop() {
        placed[index] = true;
        order.extend(stages.get_index(index).map(|(name, _)| name.as_str()));
        for &dependent in dependents.get(&index).map_or(&[][..], Vec::as_slice) {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    // Only reachable for a graph that failed `check`: keep the result total.
    for (index, name) in stages.keys().enumerate() {
        if !placed[index] {
            order.push(name.as_str());
        }
    }
    order
}

/// Every stage `stage` reaches through `needs`, not including itself
/// (unless it sits on a cycle, which `check` rejects).
pub fn ancestors(stages: &IndexMap<String, Stage>, stage: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut queue: Vec<&str> = stages
        .get(stage)
        .map(|s| s.needs.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(name) = queue.pop() {
        if found.insert(name.to_owned()) {
            if let Some(s) = stages.get(name) {
                queue.extend(s.needs.iter().map(String::as_str));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Grants, PluginRef, When, WorkspaceAccess};
    use crate::Location;
    use std::time::Duration;

    fn graph(spec: &[(&str, &[&str])]) -> IndexMap<String, Stage> {
        spec.iter()
            .map(|(name, needs)| {
                let stage = Stage {
                    name: (*name).to_owned(),
                    uses: PluginRef::Path(std::path::PathBuf::new()),
                    needs: needs.iter().map(|n| (*n).to_owned()).collect(),
                    with: serde_json::json!({}),
                    grants: Grants {
                        workspace: WorkspaceAccess::None,
                        env: vec![],
                        network: vec![],
                        exec: vec![],
                        secrets: vec![],
                        tls_ca: vec![],
                        memory: 0,
                        output: 0,
                        artifacts: 0,
                    },
                    gates: vec![],
                    when: When::Success,
                    timeout: Duration::from_secs(1),
                    grace_period: Duration::ZERO,
                    retries: 0,
                    environment: None,
                    approval: false,
                    on_inconclusive: Default::default(),
                    runs_on: Default::default(),
                    location: Location::START,
                };
                ((*name).to_owned(), stage)
            })
            .collect()
    }

    #[test]
    fn orders_needs_first_and_keeps_file_order() {
        let stages = graph(&[
            ("deploy", &["build", "test"]),
            ("lint", &[]),
            ("test", &["lint"]),
            ("build", &["lint"]),
            ("docs", &[]),
        ]);
        assert_eq!(check(&stages), Ok(()));
        assert_eq!(
            topo_order(&stages),
            ["lint", "test", "build", "deploy", "docs"]
        );
        let expected: BTreeSet<String> = ["build", "lint", "test"].map(String::from).into();
        assert_eq!(ancestors(&stages, "deploy"), expected);
        assert!(ancestors(&stages, "lint").is_empty());
        assert!(ancestors(&stages, "nope").is_empty());
    }

    #[test]
    fn names_the_whole_cycle() {
        let stages = graph(&[("a", &["b"]), ("b", &["x", "c"]), ("c", &["a"]), ("x", &[])]);
        assert_eq!(
            check(&stages),
            Err(DagError::Cycle {
                cycle: ["a", "b", "c", "a"].map(String::from).to_vec(),
                stage: "c".into(),
                index: 0,
            })
        );
    }

    #[test]
    fn rejects_self_unknown_and_duplicate_needs() {
        let stages = graph(&[("lint", &[]), ("build", &["lint", "build"])]);
        assert_eq!(
            check(&stages),
            Err(DagError::SelfNeed {
                stage: "build".into(),
                index: 1
            })
        );
        let stages = graph(&[("lint", &[]), ("build", &["lnit"])]);
        assert_eq!(
            check(&stages),
            Err(DagError::UnknownNeed {
                stage: "build".into(),
                index: 0,
                need: "lnit".into(),
                suggestion: Some("lint".into()),
            })
        );
        let stages = graph(&[("lint", &[]), ("build", &["lint", "lint"])]);
        assert!(matches!(
            check(&stages),
            Err(DagError::DuplicateNeed { index: 1, .. })
        ));
    }

    #[test]
    fn suggests_only_close_names() {
        let names = ["lint", "test", "build", "deploy"];
        assert_eq!(closest("biuld", names), Some("build"));
        assert_eq!(closest("deplyo", names), Some("deploy"));
        assert_eq!(closest("tset", names), Some("test"));
        assert_eq!(closest("package", names), None);
    }
}
