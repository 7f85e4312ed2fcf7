//! Throwaway servers for toolhost's tests and benchmark: PostgreSQL and
//! Redis from the machine's own binaries (`tests/services/setup.sh`
//! installs them where missing), each in a temp dir on a free loopback
//! port and stopped when dropped (never the machine's own instances), and
//! a round-robin TCP balancer to put in front of replicas.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A PostgreSQL server of the test's own.
pub struct Postgres {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn start() -> anyhow::Result<Postgres> {
        let bin = postgres_bin()?;
        let root = temp_dir("postgres")?;
        let port = free_port()?;
        let postgres = Postgres { root, bin, port };
        let data = postgres.data();
        postgres.run("initdb", |c| {
            c.arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "toolhost",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
        })?;
        postgres.pg_ctl_start()?;
        Ok(postgres)
    }

    /// A URL for the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://toolhost@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a lost host would.
    pub fn kill(&self) -> anyhow::Result<()> {
        let data = self.data();
        self.run("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
        })?;
        Ok(())
    }

    /// Starts it again on the same port and data.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl_start()
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let (data, log) = (self.data(), self.root.join("server.log"));
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.root.display()
        );
        self.run("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options, "-w", "-t", "60", "start"])
        })
        .with_context(|| {
            format!(
                "PostgreSQL did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Runs one of the server's programs; as root, as the `postgres` user
    /// (PostgreSQL refuses to run as root).
    fn run(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> anyhow::Result<Output> {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        args(&mut command);
        let out = command
            .output()
            .with_context(|| format!("running {}", path.display()))?;
        if !out.status.success() {
            bail!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A Redis server of the test's own: nothing on disk, loopback only.
pub struct Redis {
    root: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        let redis = Redis {
            root: temp_dir("redis")?,
            port: free_port()?,
            child: Mutex::new(None),
        };
        redis.restart()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it with SIGKILL, as a crash would.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port, and waits until it answers.
    pub fn restart(&self) -> anyhow::Result<()> {
        let binary =
            std::env::var_os("TOOLHOST_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (tests/services/setup.sh installs redis-server)",
                    binary.to_string_lossy()
                )
            })?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on {} within 20 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A layer-4 balancer of the test's own: each new connection goes to the
/// next backend in turn (no stickiness), skipping one that refuses, as a
/// balancer's health check would. Stops when dropped.
pub struct RoundRobin {
    pub addr: std::net::SocketAddr,
    backends: std::sync::Arc<Mutex<Vec<std::net::SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    pub async fn start(backends: Vec<std::net::SocketAddr>) -> anyhow::Result<RoundRobin> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let backends = std::sync::Arc::new(Mutex::new(backends));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut client, _)) = listener.accept().await {
                let start = next;
                next = next.wrapping_add(1);
                let backends = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let backend = backends[(start + i) % backends.len()];
                        if let Ok(mut server) = tokio::net::TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(RoundRobin {
            addr,
            backends,
            task,
        })
    }

    /// Points backend `index` at a new address (a replica restarted on
    /// another port).
    pub fn replace(&self, index: usize, addr: std::net::SocketAddr) {
        if let Some(slot) = self
            .backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(index)
        {
            *slot = addr;
        }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The newest installed PostgreSQL's programs, or `TOOLHOST_PG_BIN`.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TOOLHOST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "no PostgreSQL server programs in /usr/lib/postgresql/*/bin \
         (tests/services/setup.sh installs them; `cargo xtask test` runs it)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A temp dir the server's user can write: under /tmp (the workspace may
/// not be reachable by another user), handed to `postgres` when root.
fn temp_dir(label: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "toolhost-{label}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir)?;
    if is_root() {
        chown_postgres(&dir)?;
    }
    Ok(dir)
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .status()?;
    if !status.success() {
        bail!("chown postgres {}: {status}", dir.display());
    }
    Ok(())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A loopback port free now (the server binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
