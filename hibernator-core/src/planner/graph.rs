//! Dependency graph compilation: de-duplicated adjacency lists in both
//! directions and cycle detection (Kahn's pass, then petgraph's Tarjan SCC on
//! the cyclic remainder to name each cycle).

use std::collections::VecDeque;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Adjacency;

/// A resolved dependency edge: `(from, to, position in spec.execution.strategy.dependencies)`.
pub(crate) type Edge = (usize, usize, usize);

/// A cycle found in the dependencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundCycle {
    /// Targets of the cycle in order, the first repeated at the end.
    pub(crate) nodes: Vec<usize>,
    /// Position (in the dependency list) of the edge leaving the first target.
    pub(crate) edge: usize,
}

/// The compiled dependency graph of a DAG plan (shutdown direction).
#[derive(Clone, Debug, Default)]
pub(crate) struct Compiled {
    /// Parents (`from` of each edge into a node).
    pub(crate) parents: Adjacency,
    /// Children (`to` of each edge out of a node).
    pub(crate) children: Adjacency,
    /// `(duplicate edge position, position of the first occurrence)`.
    pub(crate) duplicates: Vec<(usize, usize)>,
    /// Cycles, one per strongly connected component, ordered by first target.
    pub(crate) cycles: Vec<FoundCycle>,
}

/// Compiles `edges` (no self-loops) over `n` nodes in O(V + E + Σ d log d):
/// counting sort by `from`, then each node's small child list is sorted and
/// de-duplicated in place.
pub(crate) fn compile(n: usize, edges: &[Edge]) -> Compiled {
    // Bucket (to, position) by `from`; positions stay ascending within a bucket.
    let mut offsets = vec![0usize; n + 1];
    for &(from, _, _) in edges {
        offsets[from + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut cursor = offsets.clone();
    let mut bucketed = vec![(0usize, 0usize); edges.len()];
    for &(from, to, k) in edges {
        bucketed[cursor[from]] = (to, k);
        cursor[from] += 1;
    }

    // Sort each bucket by target and drop repeated edges.
    let mut children = Adjacency {
        offsets: vec![0; n + 1],
        items: Vec::with_capacity(edges.len()),
    };
    let mut edge_ids = Vec::with_capacity(edges.len());
    let mut duplicates = Vec::new();
    let mut parent_offsets = vec![0usize; n + 1];
    for from in 0..n {
        let bucket = &mut bucketed[offsets[from]..offsets[from + 1]];
        bucket.sort_unstable();
        let mut previous: Option<(usize, usize)> = None;
        for &(to, k) in bucket.iter() {
            match previous {
                Some((last, first)) if last == to => duplicates.push((k, first)),
                _ => {
                    children.items.push(to);
                    edge_ids.push(k);
                    parent_offsets[to + 1] += 1;
                    previous = Some((to, k));
                }
            }
        }
        children.offsets[from + 1] = children.items.len();
    }
    duplicates.sort_unstable();

    for i in 0..n {
        parent_offsets[i + 1] += parent_offsets[i];
    }
    let mut cursor = parent_offsets.clone();
    let mut parent_items = vec![0usize; children.items.len()];
    for from in 0..n {
        for &to in children.of(from) {
            parent_items[cursor[to]] = from;
            cursor[to] += 1;
        }
    }
    let parents = Adjacency {
        offsets: parent_offsets,
        items: parent_items,
    };

    let cycles = find_cycles(n, &parents, &children, &edge_ids);
    Compiled {
        parents,
        children,
        duplicates,
        cycles,
    }
}

/// Kahn's pass; when nodes remain, names one cycle per non-trivial SCC.
fn find_cycles(
    n: usize,
    parents: &Adjacency,
    children: &Adjacency,
    edge_ids: &[usize],
) -> Vec<FoundCycle> {
    let mut indegree: Vec<usize> = (0..n).map(|i| parents.of(i).len()).collect();
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0usize;
    while let Some(node) = queue.pop_front() {
        done += 1;
        for &child in children.of(node) {
            indegree[child] -= 1;
            if indegree[child] == 0 {
                queue.push_back(child);
            }
        }
    }
    if done == n {
        return Vec::new();
    }

    // The remainder: nodes on a cycle or downstream of one.
    let rest: Vec<usize> = (0..n).filter(|&i| indegree[i] > 0).collect();
    let mut local = vec![usize::MAX; n];
    let mut graph = DiGraph::<usize, ()>::with_capacity(rest.len(), rest.len());
    for &node in &rest {
        local[node] = graph.add_node(node).index();
    }
    for &node in &rest {
        for &child in children.of(node) {
            if local[child] != usize::MAX {
                graph.add_edge(
                    NodeIndex::new(local[node]),
                    NodeIndex::new(local[child]),
                    (),
                );
            }
        }
    }

    let mut component = vec![usize::MAX; n];
    let mut cycles = Vec::new();
    for (id, scc) in tarjan_scc(&graph).into_iter().enumerate() {
        if scc.len() < 2 {
            continue;
        }
        let members: Vec<usize> = scc.iter().map(|&ix| graph[ix]).collect();
        for &m in &members {
            component[m] = id;
        }
        let start = members.iter().copied().min().unwrap_or_default();
        let nodes = shortest_cycle(start, id, &component, children);
        let next = nodes.get(1).copied().unwrap_or(start);
        // Position of the edge start -> next in the dependency list.
        let base = children.offsets.get(start).copied().unwrap_or_default();
        let edge = children
            .of(start)
            .binary_search(&next)
            .ok()
            .and_then(|pos| edge_ids.get(base + pos))
            .copied()
            .unwrap_or_default();
        cycles.push(FoundCycle { nodes, edge });
    }
    cycles.sort_unstable_by_key(|c| c.nodes.first().copied());
    cycles
}

/// Shortest cycle through `start` inside component `id` (BFS over children
/// in index order, so the answer is deterministic). Closed: `start` repeated.
fn shortest_cycle(
    start: usize,
    id: usize,
    component: &[usize],
    children: &Adjacency,
) -> Vec<usize> {
    let mut previous: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &child in children.of(node) {
            if component.get(child) != Some(&id) {
                continue;
            }
            if child == start {
                let mut path = vec![start];
                let mut at = node;
                while at != start {
                    path.push(at);
                    at = previous.get(&at).copied().unwrap_or(start);
                }
                path.push(start);
                path.reverse();
                return path;
            }
            if child != start && !previous.contains_key(&child) {
                previous.insert(child, node);
                queue.push_back(child);
            }
        }
    }
    vec![start, start]
}
