//! Graphviz rendering of an [`ExecutionPlan`].

use std::fmt::Write as _;

use super::ExecutionPlan;
use crate::types::StrategyType;

/// Quotes `name` as a DOT identifier.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// See [`ExecutionPlan::to_dot`].
pub(crate) fn to_dot(plan: &ExecutionPlan) -> String {
    let inner = plan.inner();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph {} {{",
        quote(&format!("hibernator-{}", inner.operation))
    );
    let _ = writeln!(
        out,
        "  label={};",
        quote(&format!("{} {}", inner.strategy.as_str(), inner.operation))
    );
    out.push_str("  rankdir=LR;\n  node [shape=box];\n");
    match inner.strategy {
        StrategyType::Staged => {
            out.push_str("  compound=true;\n");
            for (s, stage) in inner.stages.iter().enumerate() {
                let _ = writeln!(out, "  subgraph {} {{", quote(&format!("cluster_{s}")));
                let _ = writeln!(out, "    label={};", quote(&stage.name));
                for &m in &stage.members {
                    let _ = writeln!(out, "    {};", quote(&inner.names[m]));
                }
                out.push_str("  }\n");
            }
            let firsts: Vec<(usize, usize)> = inner
                .stages
                .iter()
                .enumerate()
                .filter_map(|(s, stage)| stage.members.first().map(|&m| (s, m)))
                .collect();
            for pair in firsts.windows(2) {
                if let [(a, from), (b, to)] = pair {
                    let _ = writeln!(
                        out,
                        "  {} -> {} [ltail={}, lhead={}];",
                        quote(&inner.names[*from]),
                        quote(&inner.names[*to]),
                        quote(&format!("cluster_{a}")),
                        quote(&format!("cluster_{b}")),
                    );
                }
            }
        }
        StrategyType::Sequential => {
            for &i in &inner.order {
                let _ = writeln!(out, "  {};", quote(&inner.names[i]));
            }
            for pair in inner.order.windows(2) {
                if let [a, b] = pair {
                    let _ = writeln!(
                        out,
                        "  {} -> {};",
                        quote(&inner.names[*a]),
                        quote(&inner.names[*b])
                    );
                }
            }
        }
        StrategyType::Parallel | StrategyType::Dag => {
            for &i in &inner.order {
                let _ = writeln!(out, "  {};", quote(&inner.names[i]));
            }
            for &i in &inner.order {
                for &child in inner.children.of(i) {
                    let _ = writeln!(
                        out,
                        "  {} -> {};",
                        quote(&inner.names[i]),
                        quote(&inner.names[child])
                    );
                }
            }
        }
    }
    out.push_str("}\n");
    out
}
