//! Load driving and measurement: latencies, throughput, CPU time and memory of this process.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// CPU time (user + system) consumed by this process so far.
pub fn cpu_time() -> Duration {
    let usage = rusage();
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Peak resident set size of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    rusage().ru_maxrss as u64
}

/// Current resident set size of this process, in KiB.
pub fn current_rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// What one load run produced.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub calls: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
    /// Sorted latencies of the successful calls.
    pub latencies: Vec<Duration>,
}

impl Sample {
    pub fn rps(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }

    pub fn cpu_per_call(&self) -> Duration {
        if self.calls == 0 { Duration::ZERO } else { self.cpu / self.calls as u32 }
    }
}

/// Runs `call` from `concurrency` workers for `duration` (after `warmup`) and measures.
pub async fn drive<F, Fut>(concurrency: usize, warmup: Duration, duration: Duration, call: F) -> Sample
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    run(concurrency, warmup, call.clone()).await;
    let cpu_before = cpu_time();
    let started = Instant::now();
    let (mut latencies, errors) = run(concurrency, duration, call).await;
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    latencies.sort_unstable();
    Sample { calls: latencies.len() as u64, errors, elapsed, cpu, latencies }
}

async fn run<F, Fut>(concurrency: usize, duration: Duration, call: Arc<F>) -> (Vec<Duration>, u64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match call().await {
                        Ok(()) => latencies.push(started.elapsed()),
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("bench call failed: {e}");
                            }
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    (all, errors)
}
