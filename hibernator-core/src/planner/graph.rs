//! Dependency graph compilation: de-duplicated adjacency lists in both
//! directions and cycle detection (Kahn's pass, then petgraph's Tarjan SCC on
//! the cyclic remainder to name each cycle).

use std::collections::VecDeque;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Adjacency;

/// A resolved dependency edge: `(from, to, position in spec.execution.strategy.dependencies)`.
pub(crate) type Edge = (u32, u32, u32);

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

/// Compiles `edges` (no self-loops, listed in dependency order) over `n`
/// nodes in O(V + E + Σ d log d).
///
/// The edges are bucketed by `to` when the list is already ordered by `to`
/// (then bucketing only reads and writes sequentially), by `from` otherwise;
/// each small bucket is sorted and de-duplicated in place, and the other
/// direction is its transpose (which comes out sorted).
pub(crate) fn compile(n: usize, edges: &[Edge]) -> Compiled {
    let by_to = edges.windows(2).all(|pair| pair[0].1 <= pair[1].1);
    let (primary, duplicates) = if by_to {
        group(n, edges.iter().map(|&(from, to, k)| (to, from, k)))
    } else {
        group(n, edges.iter().copied())
    };
    let secondary = transpose(n, &primary);
    let (parents, children) = if by_to {
        (primary, secondary)
    } else {
        (secondary, primary)
    };
    let cycles = find_cycles(n, &parents, &children, edges);
    Compiled {
        parents,
        children,
        duplicates,
        cycles,
    }
}

/// Adjacency lists keyed by the first element of each `(key, other, position)`
/// triple, sorted and without repeats, plus the repeats as
/// `(position, position of the first occurrence)` sorted by position.
fn group(
    n: usize,
    triples: impl ExactSizeIterator<Item = Edge> + Clone,
) -> (Adjacency, Vec<(usize, usize)>) {
    // Counting sort by key; positions stay ascending within a bucket.
    let mut offsets = vec![0usize; n + 1];
    for (key, _, _) in triples.clone() {
        offsets[key as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut bucketed = vec![(0u32, 0u32); triples.len()];
    {
        let mut cursor = offsets.clone();
        for (key, other, k) in triples {
            let slot = &mut cursor[key as usize];
            bucketed[*slot] = (other, k);
            *slot += 1;
        }
    }

    // Sort each bucket by the other end and drop repeated edges, compacting
    // `bucketed` in place (the write position never passes the read position).
    let mut duplicates = Vec::new();
    let mut write = 0usize;
    let mut start = 0usize;
    for key in 0..n {
        let end = offsets[key + 1];
        offsets[key] = write;
        let bucket_start = write;
        bucketed[start..end].sort_unstable();
        for read in start..end {
            let (other, k) = bucketed[read];
            match bucketed[bucket_start..write].last() {
                Some(&(last, first)) if last == other => {
                    duplicates.push((k as usize, first as usize));
                }
                _ => {
                    bucketed[write] = (other, k);
                    write += 1;
                }
            }
        }
        start = end;
    }
    offsets[n] = write;
    duplicates.sort_unstable();
    let items = bucketed[..write]
        .iter()
        .map(|&(other, _)| other as usize)
        .collect();
    (Adjacency { offsets, items }, duplicates)
}

/// The reverse adjacency of `forward`; each list comes out sorted.
fn transpose(n: usize, forward: &Adjacency) -> Adjacency {
    let mut offsets = vec![0usize; n + 1];
    for &to in &forward.items {
        offsets[to + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut cursor = offsets.clone();
    let mut items = vec![0usize; forward.items.len()];
    for from in 0..n {
        for &to in forward.of(from) {
            let slot = &mut cursor[to];
            items[*slot] = from;
            *slot += 1;
        }
    }
    Adjacency { offsets, items }
}

/// Kahn's pass; when nodes remain, names one cycle per non-trivial SCC.
fn find_cycles(
    n: usize,
    parents: &Adjacency,
    children: &Adjacency,
    edges: &[Edge],
) -> Vec<FoundCycle> {
    let mut indegree: Vec<u32> = parents
        .offsets
        .windows(2)
        .map(|w| u32::try_from(w[1] - w[0]).unwrap_or(u32::MAX))
        .collect();
    let mut stack: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0usize;
    while let Some(node) = stack.pop() {
        done += 1;
        for &child in children.of(node) {
            indegree[child] -= 1;
            if indegree[child] == 0 {
                stack.push(child);
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
        // Position of the (first) edge start -> next in the dependency list.
        let edge = edges
            .iter()
            .find(|&&(from, to, _)| from as usize == start && to as usize == next)
            .map(|&(_, _, k)| k as usize)
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
