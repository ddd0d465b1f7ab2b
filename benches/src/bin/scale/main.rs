//! `scale`: the shipped `hibernator` binary as a controller process holding
//! a large estate, measured from outside (docs/performance.md, "At scale").
//!
//! ```sh
//! cargo build --release --locked -p hibernator-operator --bin hibernator
//! sudo cargo run --release -p hibernator-benches --bin scale -- converge
//! sudo cargo run --release -p hibernator-benches --bin scale -- boundary --faults
//! ```
//!
//! The controller runs as the chart runs it (in-cluster config from a pod's
//! token and CA, leader election), started by the testkit kubelet against
//! the testkit API server over HTTPS, or against a real cluster when
//! `HIBERNATOR_TEST_KUBECONFIG` names one (request counts and fault
//! injection need the testkit server and are skipped there). Needs root
//! (the kubelet runs containers in private mount namespaces).
//!
//! - `converge`: `--plans` plans of `--targets` targets in `--namespaces`
//!   namespaces, none due. Time from the controller's start until every plan
//!   has a phase and `observedGeneration` current; peak and steady RSS; CPU
//!   seconds; API requests during start-up and per minute in steady state.
//! - `boundary`: the same plans all cross one boundary (the next minute at
//!   least `--lead` away); runner Jobs are held (not run), so what is
//!   measured is the controller. Per plan, boundary → its first Job seen by
//!   a watch (p50/p99/max), the time until every plan has all its released
//!   Jobs, the controller's request rate, and with `--faults` the API
//!   server failing Job creates (429 with `Retry-After`, 500, 504) and
//!   status writes during the burst.
//! - `latency`: `--boundaries` plans, each crossing its own boundary one
//!   minute after the previous one, so that one plan crosses at a time:
//!   boundary -> first Job per boundary (p50/p99/max).
//! - `runner-startup`: `hibernator runner` as a plain process, spawn ->
//!   first Kubernetes API bytes and -> first cloud API bytes
//!   (`startup.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Timelike, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use hibernator_core::types::HibernatePlan;
use hibernator_testkit::process::{Child, ProcessConfig, ProcessWorld, free_port};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

mod admission;
mod startup;

#[derive(Debug, clap::Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    /// The `hibernator` binary to run (default: the release build).
    #[arg(long, global = true, default_value = "target/release/hibernator")]
    binary: PathBuf,
    /// Plans.
    #[arg(long, global = true, default_value_t = 1000)]
    plans: usize,
    /// Targets per plan.
    #[arg(long, global = true, default_value_t = 20)]
    targets: usize,
    /// Namespaces the plans are spread over.
    #[arg(long, global = true, default_value_t = 10)]
    namespaces: usize,
    /// Extra controller flags (e.g. `--kube-qps=100`), repeatable.
    #[arg(long = "controller-arg", global = true, allow_hyphen_values = true)]
    controller_args: Vec<String>,
    /// Extra environment of the controller's container, `NAME=VALUE`
    /// (e.g. `MALLOC_ARENA_MAX=2`), repeatable.
    #[arg(long = "controller-env", global = true)]
    controller_env: Vec<String>,
    /// Copy the controller's log here when it has exited (e.g. with
    /// `--controller-env RUST_LOG=hibernator=debug`).
    #[arg(long, global = true)]
    keep_log: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// None due: convergence, memory, CPU, requests.
    Converge {
        /// Seconds of steady state measured after convergence.
        #[arg(long, default_value_t = 60)]
        steady: u64,
    },
    /// All plans cross one boundary.
    Boundary {
        /// Targets released per plan at the boundary (`maxConcurrency`).
        #[arg(long, default_value_t = 2)]
        released: usize,
        /// The boundary is the next minute at least this many seconds after
        /// the plans exist.
        #[arg(long, default_value_t = 30)]
        lead: u64,
        /// Fail Job creates and status writes during the burst.
        #[arg(long)]
        faults: bool,
    },
    /// One plan at a time crosses a boundary, `--boundaries` times (one a
    /// minute).
    Latency {
        /// Boundaries (= plans, = minutes the run takes).
        #[arg(long, default_value_t = 100)]
        boundaries: usize,
        /// The first boundary is the next minute at least this many seconds
        /// after the plans exist.
        #[arg(long, default_value_t = 30)]
        lead: u64,
    },
    /// `hibernator runner` as a process: spawn -> first API bytes.
    RunnerStartup {
        /// Runs.
        #[arg(long, default_value_t = 50)]
        runs: usize,
    },
    /// AdmissionReview round trips through `hibernator webhook` (TLS,
    /// one kept-alive connection, as the API server sends them).
    Admission {
        /// Reviews sent (half of them denied).
        #[arg(long, default_value_t = 1000)]
        requests: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    hibernator_testkit::kube::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = std::fs::canonicalize(&args.binary)
        .with_context(|| format!("--binary {}", args.binary.display()))?;
    if let Mode::RunnerStartup { runs } = args.mode {
        return startup::run(&binary, runs).await;
    }
    let mut config =
        ProcessConfig::new("hibernator-under-test:scale", binary.display().to_string())
            .env("RUST_LOG", "warn");
    for pair in &args.controller_env {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--controller-env {pair:?}: expected NAME=VALUE"))?;
        config = config.env(name, value);
    }
    let world = ProcessWorld::start("scale", config).await?;
    println!(
        "# binary {} ({} bytes) against {}",
        binary.display(),
        std::fs::metadata(&binary)?.len(),
        if world.cluster.is_real() {
            "a real cluster"
        } else {
            "the testkit API server (HTTPS)"
        }
    );
    let estate = || async {
        println!(
            "# {} plans x {} targets in {} namespaces",
            args.plans, args.targets, args.namespaces
        );
        create_namespaces(&world, args.namespaces).await
    };
    let result = match args.mode {
        Mode::Converge { steady } => {
            let namespaces = estate().await?;
            let now = Utc::now();
            // a window six hours from now: nothing is due while we measure
            let start = (now + chrono::Duration::hours(6))
                .with_minute(0)
                .unwrap_or(now);
            let spec = Spec::new(args.targets, args.targets, start);
            create_plans(&world, &namespaces, args.plans, &spec).await?;
            converge(&world, &args, steady).await
        }
        Mode::Boundary {
            released,
            lead,
            faults,
        } => {
            let namespaces = estate().await?;
            boundary(&world, &args, &namespaces, released, lead, faults).await
        }
        Mode::Latency { boundaries, lead } => {
            let namespaces = estate().await?;
            latency(&world, &args, &namespaces, boundaries, lead).await
        }
        Mode::Admission { requests } => admission::run(&world, requests).await,
        Mode::RunnerStartup { .. } => Ok(()),
    };
    world.cleanup().await?;
    result
}

/// What every plan looks like.
struct Spec {
    targets: usize,
    max_concurrency: usize,
    start: DateTime<Utc>,
}

impl Spec {
    fn new(targets: usize, max_concurrency: usize, start: DateTime<Utc>) -> Self {
        Self {
            targets,
            max_concurrency,
            start,
        }
    }

    fn plan(&self, name: &str) -> anyhow::Result<HibernatePlan> {
        let end = self.start + chrono::Duration::hours(1);
        let targets: Vec<_> = (0..self.targets)
            .map(|i| {
                json!({"name": format!("t{i:02}"), "type": "ec2",
                    "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                    "parameters": {"selector": {"tags": {"app": format!("{name}-{i}")}}}})
            })
            .collect();
        Ok(serde_json::from_value(json!({
            "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
            "metadata": {"name": name},
            "spec": {
                "schedule": {"timezone": "UTC", "offHours": [{
                    "start": self.start.format("%H:%M").to_string(),
                    "end": end.format("%H:%M").to_string(),
                    "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]}]},
                "execution": {"strategy": {"type": "Parallel",
                    "maxConcurrency": self.max_concurrency}},
                "behavior": {"retries": 0},
                "targets": targets,
            },
        }))?)
    }
}

async fn create_namespaces(world: &ProcessWorld, count: usize) -> anyhow::Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(world.cluster.client());
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("{}-{i}", world.ns());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("create namespace {name}"))?;
        world
            .cluster
            .track_cluster_scoped(&kube::core::ApiResource::erase::<Namespace>(&()), &name);
        names.push(name);
    }
    Ok(names)
}

async fn create_plans(
    world: &ProcessWorld,
    namespaces: &[String],
    count: usize,
    spec: &Spec,
) -> anyhow::Result<()> {
    let client = world.cluster.client();
    let started = Instant::now();
    stream::iter(0..count)
        .map(|i| {
            let api: Api<HibernatePlan> =
                Api::namespaced(client.clone(), &namespaces[i % namespaces.len()]);
            let plan = spec.plan(&format!("plan-{i:04}"));
            async move {
                api.create(&PostParams::default(), &plan?)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    println!(
        "created {count} plans in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Starts the controller as the chart does, watching every namespace.
async fn start_controller(world: &ProcessWorld, extra: &[String]) -> anyhow::Result<Child> {
    let mut args: Vec<String> = world
        .controller_args(free_port(), free_port())
        .into_iter()
        .filter(|a| !a.starts_with("--namespace="))
        .collect();
    args.extend([
        "--stream-transport=none".to_string(),
        "--log-format=json".to_string(),
    ]);
    args.extend(extra.iter().cloned());
    Ok(world
        .start_controller_with(args, Vec::new(), Vec::new())
        .await?)
}

/// Plans with a phase and `observedGeneration` current.
async fn converged(world: &ProcessWorld) -> anyhow::Result<usize> {
    let plans: Api<HibernatePlan> = Api::all(world.cluster.client());
    let list = plans.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|p| {
            p.status.as_ref().is_some_and(|s| {
                s.observed_generation.is_some() && s.observed_generation == p.metadata.generation
            })
        })
        .count())
}

/// The controller's process (the kubelet starts it behind `unshare` and
/// `setpriv`): the descendant of `pid` whose command is `hibernator`.
fn hibernator_pid(pid: u32) -> Option<u32> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim() == "hibernator" {
        return Some(pid);
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find_map(hibernator_pid)
}

/// RSS now and at its peak (KiB), CPU seconds (user + system).
#[derive(Clone, Copy, Debug)]
struct Usage {
    rss_kib: u64,
    peak_kib: u64,
    cpu_s: f64,
}

fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command (which may hold spaces): utime is field 14
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // rest[0] is field 3 (state): utime (14) is rest[11], stime (15) rest[12]
    let cpu_s = (ticks(11)? + ticks(12)?) / 100.0;
    Some(Usage {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
        cpu_s,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The controller's requests since the last reset, by verb and resource,
/// less `own` (the tool's own requests).
fn requests(
    world: &ProcessWorld,
    own: &BTreeMap<(String, String), u64>,
) -> Option<BTreeMap<String, u64>> {
    let server = world.cluster.api_server()?;
    let mut out = BTreeMap::new();
    for ((verb, resource), count) in server.request_counts() {
        let mine = own
            .get(&(verb.clone(), resource.clone()))
            .copied()
            .unwrap_or(0);
        let theirs = count.saturating_sub(mine);
        if theirs > 0 {
            out.insert(format!("{verb} {resource}"), theirs);
        }
    }
    Some(out)
}

fn print_requests(title: &str, counts: Option<BTreeMap<String, u64>>, per: Option<f64>) {
    let Some(counts) = counts else {
        println!("{title}: not counted (real cluster)");
        return;
    };
    let total: u64 = counts.values().sum();
    match per {
        Some(minutes) => println!("{title}: {total} ({:.1}/min)", total as f64 / minutes),
        None => println!("{title}: {total}"),
    }
    for (what, n) in counts {
        println!("  {what}: {n}");
    }
}

fn reset_counts(world: &ProcessWorld) {
    if let Some(server) = world.cluster.api_server() {
        server.reset_request_counts();
    }
}

async fn converge(world: &ProcessWorld, args: &Args, steady: u64) -> anyhow::Result<()> {
    let (extra, plans) = (&args.controller_args, args.plans);
    reset_counts(world);
    let started = Instant::now();
    let mut controller = start_controller(world, extra).await?;
    let mut polls = 0u64;
    let mut pid = None;
    let mut peak = 0u64;
    loop {
        if pid.is_none() {
            pid = controller.process.id().and_then(hibernator_pid);
        }
        if let Some(u) = pid.and_then(usage) {
            peak = peak.max(u.peak_kib);
        }
        polls += 1;
        let done = converged(world).await?;
        if done == plans {
            break;
        }
        if !controller.process.is_running() || started.elapsed() > Duration::from_secs(600) {
            bail!(
                "{done}/{plans} plans converged after {:.1} s; last log lines:\n{}",
                started.elapsed().as_secs_f64(),
                controller.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    let at_converge = pid.and_then(usage);
    // the tool's polls, and the kubelet starting the controller's pod
    let own = BTreeMap::from([
        (("list".to_string(), "hibernateplans".to_string()), polls),
        (("create".to_string(), "pods".to_string()), 1),
        (
            ("create".to_string(), "serviceaccounts/token".to_string()),
            1,
        ),
    ]);
    println!(
        "converged: {plans} plans in {:.2} s (from process start)",
        elapsed.as_secs_f64()
    );
    if let Some(u) = at_converge {
        println!(
            "at convergence: RSS {:.1} MiB, peak {:.1} MiB, CPU {:.2} s",
            mib(u.rss_kib),
            mib(u.peak_kib.max(peak)),
            u.cpu_s
        );
    }
    print_requests("requests during start-up", requests(world, &own), None);

    // the queue drains after convergence (second reconciles after the
    // status writes, Events, all behind the client's rate limit): settled
    // once 10 s pass with no request but the Lease's
    reset_counts(world);
    let settling = Instant::now();
    let mut total_settling = BTreeMap::<String, u64>::new();
    if world.cluster.api_server().is_some() {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let window = requests(world, &BTreeMap::new()).unwrap_or_default();
            reset_counts(world);
            let busy: u64 = window
                .iter()
                .filter(|(what, _)| !what.ends_with(" leases"))
                .map(|(_, n)| *n)
                .sum();
            for (what, n) in window {
                *total_settling.entry(what).or_default() += n;
            }
            if busy == 0 || settling.elapsed() > Duration::from_secs(600) {
                break;
            }
        }
        println!(
            "settled {:.0} s after convergence",
            settling.elapsed().as_secs_f64()
        );
        print_requests("requests while settling", Some(total_settling), None);
    }
    reset_counts(world);
    tokio::time::sleep(Duration::from_secs(steady)).await;
    print_requests(
        &format!("requests in {steady} s of steady state"),
        requests(world, &BTreeMap::new()),
        Some(steady as f64 / 60.0),
    );
    if let Some(u) = pid.and_then(usage) {
        println!(
            "steady: RSS {:.1} MiB, peak {:.1} MiB, CPU {:.2} s in all",
            mib(u.rss_kib),
            mib(u.peak_kib),
            u.cpu_s
        );
    }
    let exit = controller.terminate().await;
    keep_log(args, &controller)?;
    println!("controller exit after SIGTERM: {}", exit.code);
    Ok(())
}

/// Every runner Job as a watch first sees it: (`namespace/plan`, when).
/// `--keep-log`: the controller's log, copied once it has exited.
fn keep_log(args: &Args, controller: &Child) -> anyhow::Result<()> {
    if let Some(to) = &args.keep_log {
        std::fs::copy(controller.process.log_path(), to)
            .with_context(|| format!("copy the controller's log to {}", to.display()))?;
        println!("controller log: {}", to.display());
    }
    Ok(())
}

fn watch_new_jobs(
    jobs: Api<Job>,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<(String, DateTime<Utc>)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(async move {
        let config = watcher::Config::default().labels("hibernator.dev/execution-id");
        let mut events = std::pin::pin!(watcher(jobs, config).default_backoff().applied_objects());
        let mut seen = BTreeSet::new();
        while let Some(Ok(job)) = events.next().await {
            if !seen.insert(job.metadata.name.clone().unwrap_or_default()) {
                continue;
            }
            let plan = job
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("hibernator/plan").cloned())
                .unwrap_or_default();
            let key = format!("{}/{plan}", job.metadata.namespace.unwrap_or_default());
            if tx.send((key, Utc::now())).is_err() {
                break;
            }
        }
    });
    (watch, rx)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn boundary(
    world: &ProcessWorld,
    args: &Args,
    namespaces: &[String],
    released: usize,
    lead: u64,
    faults: bool,
) -> anyhow::Result<()> {
    // the boundary: the next minute at least `lead` seconds after the plans
    // exist (creating them and converging come first)
    let at = Utc::now() + chrono::Duration::seconds(lead as i64 + 60);
    let boundary = at
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    let spec = Spec::new(args.targets, released.min(args.targets), boundary);
    create_plans(world, namespaces, args.plans, &spec).await?;
    world.pause_jobs();

    let (watch, mut rx) = watch_new_jobs(Api::all(world.cluster.client()));

    reset_counts(world);
    let mut controller = start_controller(world, &args.controller_args).await?;
    let started = Instant::now();
    while converged(world).await? < args.plans {
        if Utc::now() >= boundary {
            bail!("the plans did not converge before the boundary; raise --lead");
        }
        if !controller.process.is_running() {
            bail!("controller exited:\n{}", controller.tail());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "converged before the boundary in {:.1} s; boundary {}",
        started.elapsed().as_secs_f64(),
        boundary.format("%H:%M:%S")
    );
    if faults && let Some(server) = world.cluster.api_server() {
        server.fail_next("create", "jobs", 20, 429);
        server.fail_next("create", "jobs", 5, 500);
        server.fail_next("create", "jobs", 5, 504);
        server.fail_next("update", "hibernateplans/status", 5, 504);
        server.fail_next("list", "jobs", 3, 500);
        println!(
            "faults queued: create jobs 20x429 (Retry-After: 1), 5x500, 5x504; update status 5x504; list jobs 3x500"
        );
    }
    let wait = (boundary - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    reset_counts(world);
    let pid = controller.process.id().and_then(hibernator_pid);
    let before = pid.and_then(usage);

    let expected = args.plans * released.min(args.targets);
    let mut first: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut per_plan: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut all_at = None;
    while total < expected {
        let next = tokio::time::timeout_at(deadline.into(), rx.recv()).await;
        let Ok(Some((plan, at))) = next else {
            break;
        };
        total += 1;
        first.entry(plan.clone()).or_insert(at);
        *per_plan.entry(plan).or_default() += 1;
        all_at = Some(at);
    }
    watch.abort();
    let window = all_at.map_or(0.0, |t| (t - boundary).num_milliseconds() as f64 / 1000.0);
    let mut latencies: Vec<f64> = first
        .values()
        .map(|t| (*t - boundary).num_milliseconds() as f64)
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "boundary -> first Job per plan: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} plans)",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    let complete = per_plan
        .values()
        .filter(|n| **n >= released.min(args.targets))
        .count();
    println!(
        "{total}/{expected} released Jobs; {complete}/{} plans with all their Jobs; the last {window:.2} s after the boundary",
        args.plans
    );
    print_requests(
        "controller requests from the boundary until the last Job",
        requests(world, &BTreeMap::new()),
        (window > 0.0).then_some(window / 60.0),
    );
    if let (Some(b), Some(a)) = (before, pid.and_then(usage)) {
        println!(
            "RSS {:.1} MiB (peak {:.1} MiB), CPU {:.2} s during the burst",
            mib(a.rss_kib),
            mib(a.peak_kib),
            a.cpu_s - b.cpu_s
        );
    }
    let exit = controller.terminate().await;
    keep_log(args, &controller)?;
    println!("controller exit after SIGTERM: {}", exit.code);
    if complete < args.plans {
        bail!("{} plans are missing Jobs", args.plans - complete);
    }
    Ok(())
}

/// Boundary -> first Job of `boundaries` plans whose boundaries are one
/// minute apart (plan i crosses at the first boundary + i minutes), so that
/// a single plan crosses at a time while the controller holds them all.
async fn latency(
    world: &ProcessWorld,
    args: &Args,
    namespaces: &[String],
    boundaries: usize,
    lead: u64,
) -> anyhow::Result<()> {
    let at = Utc::now() + chrono::Duration::seconds(lead as i64 + 60);
    let first_boundary = at
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    let client = world.cluster.client();
    let mut due: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for i in 0..boundaries {
        let boundary = first_boundary + chrono::Duration::minutes(i as i64);
        let name = format!("plan-{i:04}");
        let namespace = &namespaces[i % namespaces.len()];
        let plan = Spec::new(args.targets, 1, boundary).plan(&name)?;
        Api::<HibernatePlan>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &plan)
            .await?;
        due.insert(format!("{namespace}/{name}"), boundary);
    }
    world.pause_jobs();
    let (watch, mut rx) = watch_new_jobs(Api::all(client.clone()));
    let mut controller = start_controller(world, &args.controller_args).await?;
    println!(
        "{boundaries} plans, one boundary a minute from {}",
        first_boundary.format("%H:%M:%S")
    );
    let mut first: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let end = first_boundary + chrono::Duration::minutes(boundaries as i64);
    while first.len() < boundaries {
        let left = (end + chrono::Duration::seconds(30) - Utc::now())
            .to_std()
            .unwrap_or_default();
        let Ok(Some((plan, at))) = tokio::time::timeout(left, rx.recv()).await else {
            break;
        };
        if let std::collections::btree_map::Entry::Vacant(entry) = first.entry(plan) {
            let boundary = due.get(entry.key()).copied().unwrap_or(at);
            println!(
                "{}: boundary {} -> first Job {:.0} ms",
                entry.key(),
                boundary.format("%H:%M"),
                (at - boundary).num_milliseconds()
            );
            entry.insert(at);
        }
        if !controller.process.is_running() {
            bail!("controller exited:\n{}", controller.tail());
        }
    }
    watch.abort();
    let mut latencies: Vec<f64> = first
        .iter()
        .filter_map(|(plan, at)| Some((*at - *due.get(plan)?).num_milliseconds() as f64))
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "boundary -> first Job, one plan at a time: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} of {boundaries} boundaries)",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    let exit = controller.terminate().await;
    keep_log(args, &controller)?;
    println!("controller exit after SIGTERM: {}", exit.code);
    if latencies.len() < boundaries {
        bail!(
            "{} boundaries produced no Job",
            boundaries - latencies.len()
        );
    }
    Ok(())
}
