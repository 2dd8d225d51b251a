//! Command-line front end shared by `ycml-emulator` and `ycml emulator`.

use std::path::PathBuf;

use crate::{AuthMode, ControlToken, Emulator, EmulatorConfig, OperationPolicy, TlsIdentity};

/// Options of the emulator command.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (printed at startup).
    #[arg(long, default_value = "127.0.0.1:50051", env = "YCML_EMULATOR_LISTEN")]
    pub listen: String,
    /// JSON file with an EmulatorConfig (flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Accept only this API key (repeatable); default: any well-formed credential.
    #[arg(long = "accept-api-key")]
    pub api_keys: Vec<String>,
    /// Serve without any authorization checks.
    #[arg(long, conflicts_with = "api_keys")]
    pub open: bool,
    /// Only allow model URIs in this folder (repeatable).
    #[arg(long = "folder")]
    pub folders: Vec<String>,
    /// When deferred operations finish: immediate, polls:N, delay-ms:N or manual.
    #[arg(long, value_parser = parse_policy)]
    pub operations: Option<OperationPolicy>,
    /// Pause between streamed chunks, in milliseconds.
    #[arg(long)]
    pub chunk_delay_ms: Option<u64>,
    /// JSON file with scripted replies (a list of ScriptRule).
    #[arg(long)]
    pub scripts: Option<PathBuf>,
    /// JSON file with fault injection rules (a list of FaultRule).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Seed of the fault generator.
    #[arg(long)]
    pub fault_seed: Option<u64>,
    /// Also serve the HTTP/JSON control API (journal, scripts, operations, reset) here
    /// (loopback only unless --control-allow-remote).
    #[arg(long)]
    pub control_listen: Option<String>,
    /// Bearer token of the control API, at least 16 printable characters (default: a random
    /// one, printed at start).
    #[arg(long, env = "YCML_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Let the control API listen on a non-loopback address and answer any Host.
    #[arg(long)]
    pub control_allow_remote: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a new self-signed certificate for localhost; its PEM is written to a
    /// file whose path is printed (give it to clients: `ycml --ca-cert FILE`).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Keep datasets, their files and tuned models in DIR across restarts (default: memory).
    #[arg(long, value_name = "DIR", env = "YCML_EMULATOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Time each tuning stage and step takes, in milliseconds (0 finishes at once; a few
    /// hundred shows the progression).
    #[arg(long, value_name = "MS")]
    pub tuning_step_ms: Option<u64>,
    /// Training steps of each tuning job.
    #[arg(long, value_name = "N")]
    pub tuning_steps: Option<u32>,
    /// Time each batch task stage and each batch of 100 rows takes at least, in milliseconds
    /// (0 answers as fast as the engine can; a few hundred shows the progression).
    #[arg(long, value_name = "MS")]
    pub batch_step_ms: Option<u64>,
    /// Answer with a real model: a llama-architecture GGUF file such as SmolLM2-135M-Instruct
    /// (`scripts/fetch-model.sh` gets it). Needs the `local-model` feature.
    #[arg(long, value_name = "PATH", env = "YCML_EMULATOR_MODEL")]
    pub model: Option<PathBuf>,
    /// Generations the model runs at once.
    #[arg(long, value_name = "N")]
    pub model_slots: Option<usize>,
    /// Requests that may wait for the model; more get RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "N")]
    pub model_queue: Option<usize>,
    /// Tokens a model's answer may take when the request sets no max_tokens (default 512).
    #[arg(long, value_name = "N")]
    pub model_max_tokens: Option<usize>,
    /// Embed with a real model: the directory of a sentence-transformers model such as
    /// all-MiniLM-L6-v2 (`scripts/fetch-embedding-model.sh` gets it). Needs the `local-model`
    /// feature.
    #[arg(long, value_name = "DIR", env = "YCML_EMULATOR_EMBEDDING_MODEL")]
    pub embedding_model: Option<PathBuf>,
    /// Answer with any OpenAI-compatible server (`http://host:port/v1`: vLLM, llama.cpp's
    /// server, Ollama, another emulator): the emulator forwards generation, gRPC and HTTP alike.
    #[arg(long, value_name = "URL", env = "YCML_EMULATOR_UPSTREAM_OPENAI", conflicts_with = "model")]
    pub upstream_openai: Option<String>,
    /// The model name sent upstream (default: the request's model URI, right for another emulator).
    #[arg(long, value_name = "NAME")]
    pub upstream_model: Option<String>,
    /// The API key the upstream wants (sent as `Authorization: Bearer`).
    #[arg(long, value_name = "KEY", env = "YCML_EMULATOR_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<crate::config::UpstreamKey>,
    /// Seconds the upstream may take to answer, and to send each next chunk (default 120).
    #[arg(long, value_name = "SECONDS")]
    pub upstream_timeout: Option<u64>,
}

fn parse_policy(s: &str) -> Result<OperationPolicy, String> {
    let number = |v: &str| v.parse::<u64>().map_err(|_| format!("`{v}` is not a number"));
    match s.split_once(':') {
        None if s == "immediate" => Ok(OperationPolicy::Immediate),
        None if s == "manual" => Ok(OperationPolicy::Manual),
        Some(("polls", n)) => Ok(OperationPolicy::AfterPolls(number(n)? as u32)),
        Some(("delay-ms", n)) => Ok(OperationPolicy::AfterDelayMs(number(n)?)),
        _ => Err(format!("unknown operation policy `{s}`: use immediate, polls:N, delay-ms:N or manual")),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> std::io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
}

/// Runs the emulator until Ctrl-C or SIGTERM. Prints the banner and one
/// `listening on <addr>` line (machine-readable) to stdout.
pub async fn run(args: EmulatorArgs) -> std::io::Result<()> {
    run_as("ycml-emulator", args).await
}

/// [`run`], the banner and warnings naming the program as `name` (`ycml emulator`).
pub async fn run_as(name: &str, args: EmulatorArgs) -> std::io::Result<()> {
    let mut config: EmulatorConfig = match &args.config {
        Some(path) => read_json(path)?,
        None => EmulatorConfig::default(),
    };
    if args.open {
        config.auth = AuthMode::Open;
    } else if !args.api_keys.is_empty() {
        config.auth = AuthMode::Require { api_keys: args.api_keys.clone(), iam_tokens: vec![], oauth_tokens: vec![] };
    }
    config.folders.extend(args.folders.iter().cloned());
    if let Some(p) = args.operations {
        config.operations = p;
    }
    if let Some(ms) = args.chunk_delay_ms {
        config.stream_chunk_delay_ms = ms;
    }
    if let Some(path) = &args.faults {
        config.faults.extend(read_json::<Vec<crate::FaultRule>>(path)?);
    }
    if let Some(seed) = args.fault_seed {
        config.fault_seed = seed;
    }
    if let Some(token) = &args.control_token {
        config.control_token = Some(ControlToken(token.clone()));
    }
    config.control_allow_remote |= args.control_allow_remote;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("--data-dir {}: {e}", dir.display())))?;
        config.data_dir = Some(dir.clone());
    }
    if let Some(ms) = args.tuning_step_ms {
        config.tuning_step_ms = ms;
    }
    if let Some(n) = args.tuning_steps {
        config.tuning_steps = n;
    }
    if let Some(ms) = args.batch_step_ms {
        config.batch_step_ms = ms;
    }
    if let Some(path) = &args.model {
        config.model = Some(path.clone());
    }
    if let Some(dir) = &args.embedding_model {
        config.embedding_model = Some(dir.clone());
    }
    if let Some(n) = args.model_slots {
        config.model_slots = n;
    }
    if let Some(n) = args.model_max_tokens {
        config.model_max_tokens = n;
    }
    if let Some(n) = args.model_queue {
        config.model_queue = n;
    }
    // Flags override the configuration file; absent flags leave it as it is.
    if let Some(url) = &args.upstream_openai {
        config.upstream_openai = Some(url.clone());
    }
    if let Some(model) = &args.upstream_model {
        config.upstream_model = Some(model.clone());
    }
    if let Some(key) = &args.upstream_api_key {
        config.upstream_api_key = Some(key.clone());
    }
    if let Some(seconds) = args.upstream_timeout {
        config.upstream_timeout_ms = seconds.saturating_mul(1000);
    }
    let mut builder = Emulator::builder().config(config);
    let mut self_signed = None;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        builder = builder.tls(TlsIdentity { certificate_pem: read(cert)?, private_key_pem: read(key)? });
    } else if args.tls_self_signed {
        let identity = TlsIdentity::localhost().map_err(std::io::Error::other)?;
        self_signed = Some(identity.certificate_pem.clone());
        builder = builder.tls(identity);
    }
    if let Some(path) = &args.scripts {
        let rules: Vec<crate::ScriptRule> = read_json(path)?;
        for rule in rules {
            builder = builder.script(rule);
        }
    }
    let mut handle = builder.start(args.listen.as_str()).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => crate::server::cannot_listen(&args.listen, "the API", e),
        _ => e,
    })?;
    let embeddings = match &args.embedding_model {
        Some(dir) => format!("embeddings from the local model {}", dir.display()),
        None => "built-in hashed embeddings".to_owned(),
    };
    match (&args.model, &args.upstream_openai) {
        (Some(path), _) => {
            println!("{name}: {}; answers come from the local model {}, {embeddings}", crate::ABOUT, path.display())
        }
        (None, Some(url)) => println!("{name}: {}; answers come from the upstream {url}, {embeddings}", crate::ABOUT),
        (None, None) => {
            println!("{name}: {}; answers come from the deterministic built-in model, {embeddings}", crate::ABOUT)
        }
    }
    let bound = handle.bound_address();
    if bound.ip().is_unspecified() {
        println!("listening on {} (every interface; reachable locally at {})", bound, handle.endpoint());
    } else {
        println!("listening on {}", handle.endpoint());
    }
    if !bound.ip().is_loopback() {
        eprintln!(
            "{name}: WARNING: the API is reachable from the network on {bound}; anyone who can connect can use it"
        );
    }
    if let Some(pem) = self_signed {
        let path = std::env::temp_dir().join(format!("ycml-emulator-{}-cert.pem", bound.port()));
        std::fs::write(&path, pem)?;
        println!("tls certificate {} (trust it with --ca-cert)", path.display());
    }
    if let Some(addr) = &args.control_listen {
        let control = handle.serve_control(addr).await?;
        if args.control_allow_remote {
            eprintln!(
                "{name}: WARNING: the control API on {control} answers remote hosts; whoever holds its token \
                 can read every request and answer in the journal, reset the emulator and inject faults"
            );
        }
        println!("control on http://{control} (authorization: Bearer {})", handle.control_token());
    }
    shutdown_signal().await;
    println!("shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(parse_policy("immediate").unwrap(), OperationPolicy::Immediate);
        assert_eq!(parse_policy("polls:3").unwrap(), OperationPolicy::AfterPolls(3));
        assert_eq!(parse_policy("delay-ms:250").unwrap(), OperationPolicy::AfterDelayMs(250));
        assert!(parse_policy("soon").unwrap_err().contains("immediate, polls:N"));
    }
}
