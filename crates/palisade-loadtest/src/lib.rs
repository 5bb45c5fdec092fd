//! `palisade loadtest`: a load-test runner that speaks k6's vocabulary.
//!
//! A run is read from a scenario file ([`scenario`]), turned into a [`plan`] (profile
//! and scale applied, every template and threshold checked), and [`run`]: each
//! scenario's executor drives its virtual users ([`run::vu`]), whose samples go to
//! one [`metrics::Registry`] of HDR histograms, counters, rates and gauges. At the
//! end the [`threshold`]s are judged, the [`summary`] is printed (and exported in
//! k6's JSON shape), and the [`report`] draws the run as one HTML page.
//!
//! The executors' timing ([`schedule`]) is computed without I/O, so it is tested on
//! its own; arrival-rate iterations are due at fixed instants whatever the target's
//! latency, and are timed from those instants.

pub mod duration;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod summary;
pub mod template;
pub mod threshold;

/// The built-in scenarios: payments, dashboard, exports, notifications and a spike,
/// with the profiles `smoke`, `load`, `stress` and `spike`.
pub const BUILT_IN: &str = include_str!("builtin/reference.toml");

/// k6's exit code when a threshold failed.
pub const EXIT_THRESHOLDS: u8 = 99;
/// k6's exit code when the setup failed (k6: a script exception).
pub const EXIT_SETUP: u8 = 107;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_plans_under_every_profile() {
        let file = scenario::File::parse(BUILT_IN).unwrap();
        assert_eq!(
            file.scenarios.keys().collect::<Vec<_>>(),
            ["dashboard", "exports", "notifications", "payments", "spike"]
        );
        for profile in ["smoke", "load", "stress", "spike"] {
            let settings = plan::Settings {
                base_url: Some("http://127.0.0.1:3000".into()),
                profile: Some(profile.into()),
                scale: 1.0,
                ..Default::default()
            };
            let p = plan::build(&file, &settings).unwrap_or_else(|e| panic!("{profile}: {e}"));
            assert!(!p.scenarios.is_empty(), "{profile}");
        }
    }
}
