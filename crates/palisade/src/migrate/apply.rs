//! `migrate up | down | run | redo`: apply or roll back, with a progress bar and a
//! report of each step.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_migrate::engine::{Direction, Step};
use palisade_migrate::{Progress, Report, Target};

pub(super) fn print_report(report: &Report, target: &Target) {
    if report.steps.is_empty() {
        println!("nothing to do: {} is up to date", target.describe());
        return;
    }
    if report.dry_run {
        println!(
            "dry run: nothing was changed; this would run on {}:",
            target.describe()
        );
        for s in &report.steps {
            println!(
                "\n-- {} {} ({}{})",
                arrow(s.direction),
                s.id,
                s.file,
                if s.in_transaction {
                    ""
                } else {
                    ", outside a transaction"
                }
            );
            for stmt in &s.statements {
                println!("{stmt};");
            }
        }
        return;
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["", "migration", "took"]);
    for s in &report.steps {
        t.add_row([
            arrow(s.direction).to_owned(),
            s.id.clone(),
            s.duration_ms.map_or(String::new(), |ms| format!("{ms} ms")),
        ]);
    }
    println!("{t}");
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

/// A progress bar on stderr while more than one migration runs (and stderr is a terminal).
pub(super) struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub(super) fn new(json: bool) -> Bar {
        let shown = !json && std::io::stderr().is_terminal();
        Bar {
            bar: shown.then(ProgressBar::hidden),
        }
    }

    pub(super) fn start(&self, total: usize) {
        let Some(bar) = &self.bar else { return };
        if total < 2 {
            return;
        }
        bar.set_length(total as u64);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {elapsed} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
    }

    pub(super) fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn planned(&self, steps: &[Step]) {
        self.start(steps.len());
    }

    fn started(&self, step: &Step) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", arrow(step.direction), step.id));
        }
    }

    fn finished(&self, _step: &Step) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn verifying(&self, id: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(id.to_owned());
            bar.inc(1);
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }
}
