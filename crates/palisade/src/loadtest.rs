//! `palisade loadtest`: runs a scenario file (or the built-in scenarios) against a
//! target, prints a k6-style summary, and exits as k6 does: 99 when a threshold
//! failed, 107 when the setup failed.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::Args;
use palisade_loadtest::{self as lt, plan, progress::Progress, scenario::File};

#[derive(Args)]
pub struct LoadtestArgs {
    /// A scenario file (TOML); default: the built-in scenarios.
    file: Option<PathBuf>,
    /// The target's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// A profile of the file: the built-in ones are smoke, load, stress and spike.
    #[arg(long)]
    profile: Option<String>,
    /// Multiplies VUs, iterations, rates and durations (0.1 for a small machine).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Only this scenario (repeatable).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// A variable for the templates, NAME=VALUE (repeatable).
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Write the summary as JSON, in the shape of k6's summary object.
    #[arg(long, value_name = "FILE")]
    summary_export: Option<PathBuf>,
    /// Write an HTML report with charts.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// No live display.
    #[arg(long, short)]
    quiet: bool,
    /// Print the file's scenarios and profiles, and the plan, without running.
    #[arg(long)]
    dry_run: bool,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{k}` is not a variable name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

pub fn run(args: LoadtestArgs) -> ExitCode {
    match try_run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_run(args: LoadtestArgs) -> Result<ExitCode, String> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err("--scale must be more than 0".into());
    }
    let (text, source) = match &args.file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (lt::BUILT_IN.to_owned(), "built-in scenarios".to_owned()),
    };
    let file = File::parse(&text).map_err(|e| format!("{source}: {e}"))?;
    let settings = plan::Settings {
        base_url: Some(args.base_url.clone()),
        profile: args.profile.clone(),
        scale: args.scale,
        vars: args.vars.clone(),
        scenarios: args.scenarios.clone(),
    };
    let plan = plan::build(&file, &settings).map_err(|e| format!("{source}: {e}"))?;

    let profile = args
        .profile
        .as_ref()
        .map(|p| format!(", profile {p}"))
        .unwrap_or_default();
    println!("  scenarios: {source}{profile}");
    println!("     target: {}", plan.base_url);
    println!("   accounts: {}", plan.accounts);
    for s in &plan.scenarios {
        println!(
            "  * {}: {} (startTime {}, gracefulStop {})",
            s.name,
            s.executor.describe(),
            lt::duration::show(s.start_time),
            lt::duration::show(s.graceful_stop)
        );
    }
    if args.dry_run {
        for (name, p) in &file.profiles {
            println!(
                "  profile {name}: {}",
                p.description.as_deref().unwrap_or("")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let finished = match runtime.block_on(lt::run::run(plan, Progress::new(args.quiet))) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(lt::EXIT_SETUP));
        }
    };
    // Stop VUs' leftover connections before writing.
    runtime.shutdown_background();

    print!("{}", lt::summary::text(&finished));
    if let Some(path) = &args.summary_export {
        let json = lt::summary::json(
            &finished,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        );
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.report {
        let title = format!("palisade loadtest: {source}{profile}");
        let html = lt::report::html(&finished, &title)?;
        std::fs::write(path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(if finished.thresholds_failed() {
        eprintln!("error: some thresholds have failed");
        ExitCode::from(lt::EXIT_THRESHOLDS)
    } else {
        ExitCode::SUCCESS
    })
}
