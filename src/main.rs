//! The kube-field-exporter binary: parses flags and runs a command. Errors end here.

use std::process::ExitCode;

use anyhow::Context as _;
use kube_field_exporter::cli::{
    Cli, Command, FlattenConfig, LogFormat, ServeCommand, normalize_args,
};
use kube_field_exporter::serve::{self, ServeError};

fn main() -> ExitCode {
    let args = normalize_args(std::env::args());
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmd = strs.first().copied().unwrap_or("kube-field-exporter");
    let cli = match <Cli as argh::FromArgs>::from_args(&[cmd], strs.get(1..).unwrap_or(&[])) {
        Ok(c) => c,
        Err(early) => {
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", early.output);
                ExitCode::from(2)
            };
        }
    };
    match cli.command {
        Command::Schema(a) => {
            let cfg = match kube_field_exporter::cli::SchemaConfig::try_from(a) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut err = stderr.lock();
            let result = if cfg.resources.is_empty() {
                kube_field_exporter::schema_cmd::run(&cfg, &mut out, &mut err)
            } else {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("error: cannot start the runtime: {e}");
                        return ExitCode::from(1);
                    }
                };
                let client = match rt.block_on(kube_client(&cfg.kubeconfig, &cfg.context)) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(1);
                    }
                };
                rt.block_on(kube_field_exporter::schema_cmd::run_cluster(
                    &cfg, &client, &mut out, &mut err,
                ))
            };
            match result {
                Ok(s) if s.skipped == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: writing output: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Serve(a) => {
            let cmd = match ServeCommand::try_from(a) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logs(cmd.log_format);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            rt.block_on(run_serve(cmd))
        }
        Command::Flatten(a) => {
            let cfg = match FlattenConfig::try_from(a) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut err = stderr.lock();
            match kube_field_exporter::offline::run(&cfg, &mut out, &mut err) {
                Ok(s) if s.skipped == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: writing output: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Cluster access like kubectl: --kubeconfig, else --context in the default kubeconfig,
/// else kube-rs inference ($KUBECONFIG / ~/.kube/config, then the in-cluster service
/// account).
async fn kube_client(
    kubeconfig: &Option<std::path::PathBuf>,
    context: &Option<String>,
) -> anyhow::Result<kube::Client> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let opts = KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&opts)
            .await
            .context("loading the kubeconfig context")?,
        (None, None) => kube::Config::infer().await.context(
            "no cluster access: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster",
        )?,
    };
    kube::Client::try_from(config).context("creating the Kubernetes client")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn run_serve(cmd: ServeCommand) -> ExitCode {
    let client = match kube_client(&cmd.kubeconfig, &cmd.context).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(1);
        }
    };
    let mut running = match serve::start(cmd.config, client).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    tokio::select! {
        r = running.wait() => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ (ServeError::KindConflict(_) | ServeError::Resolve(_))) => {
                tracing::error!("{e}");
                ExitCode::from(2)
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::from(1)
            }
        },
        () = shutdown_signal() => {
            tracing::info!("signal received; stopping");
            running.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
