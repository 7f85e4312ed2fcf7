//! Cluster mode (state in PostgreSQL, rate budgets in Redis) against the
//! embedded default, in one run: one replica of each at 1 and 16
//! connections in alternating rounds (what a shared budget's Redis round
//! trip costs a call), then three replicas behind a round-robin balancer
//! against one replica (on two cores this measures the overhead of running
//! three processes, not scaling). The database servers are the bench's own
//! throwaway instances (`toolhost-testbed`).

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::load::{self, Budget, CpuProbe, Run, ServerCpu};
use crate::mcp::Target;
use crate::server::{Setup, Toolhost};
use crate::stats;

/// One side of a comparison: its best round (highest throughput) and the
/// lowest p50 of its rounds.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Side {
    pub(crate) best: Run,
    pub(crate) best_p50_us: u32,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ClusterResult {
    /// One replica each, 16 connections.
    pub(crate) embedded_16: Side,
    pub(crate) cluster_16: Side,
    /// One replica each, 1 connection: the per-call cost without queueing.
    pub(crate) embedded_1: Side,
    pub(crate) cluster_1: Side,
    /// Cluster mode, 16 connections: one replica, and three behind the
    /// round-robin balancer.
    pub(crate) one_replica: Side,
    pub(crate) three_replicas: Side,
    pub(crate) rounds: Vec<Run>,
}

fn side(rounds: &[Run], label: &str, connections: usize) -> anyhow::Result<Side> {
    let mine: Vec<&Run> = rounds
        .iter()
        .filter(|r| r.target == label && r.connections == connections)
        .collect();
    let best = mine
        .iter()
        .max_by(|a, b| a.per_sec.total_cmp(&b.per_sec))
        .map(|r| (*r).clone())
        .ok_or_else(|| anyhow::anyhow!("no {label} round at {connections} connections"))?;
    let best_p50_us = mine
        .iter()
        .map(|r| r.latency.p50_us)
        .min()
        .unwrap_or_default();
    Ok(Side { best, best_p50_us })
}

/// Runs the comparison. `work` holds the servers' data dirs.
pub(crate) async fn measure(
    setup: &Setup,
    work: &Path,
    budget: Budget,
    rounds: usize,
    ticks: u64,
    not_client: &'static str,
) -> anyhow::Result<ClusterResult> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let redis = toolhost_testbed::Redis::start()?;
    let mut cluster = setup.clone();
    cluster.env.extend([
        ("TOOLHOST_CLUSTER__POSTGRES_URL".to_string(), postgres.url()),
        // Every start already shares one public URL (one issuer and
        // audience), as replicas behind a balancer do.
        ("TOOLHOST_CLUSTER__REDIS_URL".to_string(), redis.url()),
    ]);
    let fresh = |name: &str| {
        let dir = work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    };
    let probe = |pids: Vec<u32>| CpuProbe {
        server: ServerCpu::Processes(pids),
        not_client,
        ticks_per_sec: ticks,
    };
    let mut all = Vec::new();

    let embedded = Toolhost::spawn(setup, &fresh("cluster-embedded"), "embedded").await?;
    let one = Toolhost::spawn(&cluster, &fresh("cluster-r1"), "cluster-r1").await?;
    let sides = [
        (&embedded.target, probe(vec![embedded.pid]), "embedded"),
        (&one.target, probe(vec![one.pid]), "cluster"),
    ];
    for connections in [1, 16] {
        for round in 0..rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (target, probe, label) = &sides[i];
                let mut run = load::run(target, connections, budget, probe).await?;
                run.target = label;
                report(&run);
                all.push(run);
            }
        }
    }
    drop(embedded);

    // Two more replicas serving the first one's certificate (copied into
    // their data dirs before they start), so the balancer's clients trust
    // whichever answers.
    let tls = work.join("cluster-r1").join("tls");
    let mut replicas = Vec::new();
    for name in ["cluster-r2", "cluster-r3"] {
        let dir = fresh(name);
        std::fs::create_dir_all(dir.join("tls"))?;
        for file in ["cert.pem", "key.pem"] {
            std::fs::copy(tls.join(file), dir.join("tls").join(file))?;
        }
        replicas.push(Toolhost::spawn(&cluster, &dir, name).await?);
    }
    let addrs = std::iter::once(one.target.addr)
        .chain(replicas.iter().map(|r| r.target.addr))
        .collect();
    let balancer = toolhost_testbed::RoundRobin::start(addrs).await?;
    let behind = Arc::new(Target {
        addr: balancer.addr,
        ..one.target.as_ref().clone()
    });
    let pids: Vec<u32> = std::iter::once(one.pid)
        .chain(replicas.iter().map(|r| r.pid))
        .collect();
    let three = [
        (&one.target, probe(vec![one.pid]), "one replica"),
        (&behind, probe(pids), "three replicas"),
    ];
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (target, probe, label) = &three[i];
            let mut run = load::run(target, 16, budget, probe).await?;
            run.target = label;
            report(&run);
            all.push(run);
        }
    }
    drop(balancer);
    drop(replicas);
    drop(one);
    Ok(ClusterResult {
        embedded_16: side(&all, "embedded", 16)?,
        cluster_16: side(&all, "cluster", 16)?,
        embedded_1: side(&all, "embedded", 1)?,
        cluster_1: side(&all, "cluster", 1)?,
        one_replica: side(&all, "one replica", 16)?,
        three_replicas: side(&all, "three replicas", 16)?,
        rounds: all,
    })
}

fn report(run: &Run) {
    eprintln!(
        "bench: cluster {:>4} conns {:>15}: {:>8.0}/s p50 {:.3} ms p99 {:.3} ms, server {:.1} µs/req, {} errors",
        run.connections,
        run.target,
        run.per_sec,
        stats::ms(run.latency.p50_us),
        stats::ms(run.latency.p99_us),
        run.server_cpu_us,
        run.errors
    );
}
