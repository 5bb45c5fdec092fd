//! When things happen, worked out before the run and free of I/O so that each
//! executor's timing is tested on its own: how many VUs a `ramping-vus` scenario runs
//! when, and when each iteration of an arrival-rate scenario is due.

use std::time::Duration;

/// A stage: reach `target` (VUs, or iterations per time unit) linearly over `duration`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// `ramping-vus`: the times the number of VUs changes, and to what, from `start` VUs.
/// Going from a to b over a stage, the VU count is the whole part of the straight line
/// between them rounded up: ramping up from 0 starts the first VU at once, ramping down
/// stops the last one at the stage's end. A stage of zero length jumps.
pub fn vu_changes(start: u64, stages: &[Stage]) -> Vec<(Duration, u64)> {
    let mut out = vec![(Duration::ZERO, start)];
    let mut at = Duration::ZERO;
    let mut from = start;
    for stage in stages {
        let to = stage.target.max(0.0).round() as u64;
        let span = to.abs_diff(from);
        for i in 1..=span {
            // The count is the line rounded up: going up, VU from+i starts as the line
            // leaves from+i−1; going down, one stops as the line reaches from−i.
            let (fraction, count) = if to > from {
                ((i - 1) as f64 / span as f64, from + i)
            } else {
                (i as f64 / span as f64, from - i)
            };
            push(&mut out, at + stage.duration.mul_f64(fraction), count);
        }
        at += stage.duration;
        from = to;
    }
    out
}

fn push(out: &mut Vec<(Duration, u64)>, when: Duration, count: u64) {
    match out.last_mut() {
        Some(last) if last.0 == when => last.1 = count,
        _ => out.push((when, count)),
    }
}

/// The VU count at `t` of a change list made by [`vu_changes`].
pub fn vus_at(changes: &[(Duration, u64)], t: Duration) -> u64 {
    changes
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or(0, |(_, n)| *n)
}

/// The whole length of a list of stages.
pub fn total(stages: &[Stage]) -> Duration {
    stages.iter().map(|s| s.duration).sum()
}

/// Arrival-rate executors: when each iteration is due. The rate moves linearly within
/// a stage (per second here), so the number of iterations due by `t` is the integral
/// N(t) of the rate, and iteration k (from 0) is due when N reaches k: exactly
/// rate × duration iterations over a constant stage, the area under the ramp over a
/// ramping one. Each is due at its own instant whatever the previous one's fate, which
/// is what keeps the measure free of coordinated omission.
#[derive(Clone, Debug)]
pub struct Arrivals {
    /// (duration, rate at start, rate at end), rates per second.
    stages: Vec<(Duration, f64, f64)>,
    stage: usize,
    stage_at: Duration,
    stage_count: f64,
    next: u64,
}

impl Arrivals {
    /// `constant-arrival-rate`: `rate` iterations per `time_unit` for `duration`.
    pub fn constant(rate: f64, time_unit: Duration, duration: Duration) -> Arrivals {
        let r = per_second(rate, time_unit);
        Arrivals::from_stages(vec![(duration, r, r)])
    }

    /// `ramping-arrival-rate`: from `start_rate`, through each stage's target, per
    /// `time_unit`.
    pub fn ramping(start_rate: f64, time_unit: Duration, stages: &[Stage]) -> Arrivals {
        let mut from = per_second(start_rate, time_unit);
        let mut out = Vec::new();
        for s in stages {
            let to = per_second(s.target, time_unit);
            out.push((s.duration, from, to));
            from = to;
        }
        Arrivals::from_stages(out)
    }

    fn from_stages(stages: Vec<(Duration, f64, f64)>) -> Arrivals {
        Arrivals {
            stages,
            stage: 0,
            stage_at: Duration::ZERO,
            stage_count: 0.0,
            next: 0,
        }
    }
}

fn per_second(rate: f64, unit: Duration) -> f64 {
    let secs = unit.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        rate.max(0.0) / secs
    }
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let &(d, r0, r1) = self.stages.get(self.stage)?;
            let secs = d.as_secs_f64();
            let in_stage = (r0 + r1) / 2.0 * secs;
            let n = self.next as f64 - self.stage_count;
            // Due within this stage (strictly before its end)?
            if n < in_stage - 1e-9 {
                let t = if (r1 - r0).abs() < 1e-12 {
                    n / r0
                } else {
                    // a t² + b t = n, a = (r1 − r0) / 2d, b = r0; the root written so it
                    // stays exact when a is small or negative.
                    let a = (r1 - r0) / (2.0 * secs);
                    let disc = (r0 * r0 + 4.0 * a * n).max(0.0);
                    if n == 0.0 {
                        0.0
                    } else {
                        2.0 * n / (r0 + disc.sqrt())
                    }
                };
                self.next += 1;
                return Some(self.stage_at + Duration::from_secs_f64(t.clamp(0.0, secs)));
            }
            self.stage_count += in_stage;
            self.stage_at += d;
            self.stage += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64, target: f64) -> Stage {
        Stage {
            duration: Duration::from_secs_f64(secs),
            target,
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn ramping_vus_adds_and_removes_vus_along_the_line() {
        // 0 → 4 over 4 s, hold 2 s, 4 → 0 over 2 s.
        let c = vu_changes(0, &[s(4.0, 4.0), s(2.0, 4.0), s(2.0, 0.0)]);
        assert_eq!(
            c,
            vec![
                (ms(0), 1),
                (ms(1000), 2),
                (ms(2000), 3),
                (ms(3000), 4),
                (ms(6500), 3),
                (ms(7000), 2),
                (ms(7500), 1),
                (ms(8000), 0),
            ]
        );
        assert_eq!(vus_at(&c, ms(2500)), 3);
        assert_eq!(vus_at(&c, ms(6000)), 4);
        assert_eq!(vus_at(&c, ms(9000)), 0);
    }

    #[test]
    fn ramping_vus_from_a_start_and_with_a_jump() {
        // The reference's spike: 0 s at 10, jump to 500 at once, hold, drop.
        let c = vu_changes(10, &[s(0.0, 500.0), s(1.0, 500.0), s(0.0, 0.0)]);
        assert_eq!(c, vec![(ms(0), 500), (ms(1000), 0)]);
        // 20 → 200 over 2 min: 180 steps, the last VU starting 179/180 of the way.
        let c = vu_changes(20, &[s(120.0, 200.0)]);
        assert_eq!(c.len(), 180);
        assert_eq!(c[0], (ms(0), 21));
        assert_eq!(vus_at(&c, Duration::from_secs(61)), 112);
        assert_eq!(
            c.last().unwrap(),
            &(Duration::from_secs_f64(120.0 * 179.0 / 180.0), 200)
        );
    }

    #[test]
    fn a_constant_rate_is_due_evenly_and_counts_rate_times_duration() {
        let a: Vec<_> =
            Arrivals::constant(4.0, Duration::from_secs(1), Duration::from_secs(2)).collect();
        assert_eq!(a.len(), 8);
        for (k, t) in a.iter().enumerate() {
            assert_eq!(*t, ms(250 * k as u64));
        }
        // 30 per minute = one every 2 s.
        let a: Vec<_> =
            Arrivals::constant(30.0, Duration::from_secs(60), Duration::from_secs(10)).collect();
        assert_eq!(a, vec![ms(0), ms(2000), ms(4000), ms(6000), ms(8000)]);
    }

    #[test]
    fn a_ramping_rate_follows_the_area_under_the_ramp() {
        // 0 → 10/s over 10 s: 50 iterations, denser at the end; then 10/s for 1 s: 10.
        let a: Vec<_> =
            Arrivals::ramping(0.0, Duration::from_secs(1), &[s(10.0, 10.0), s(1.0, 10.0)])
                .collect();
        assert_eq!(a.len(), 60);
        let first_half = a.iter().filter(|t| **t < Duration::from_secs(5)).count();
        // N(5) = 5²/2·1 = 12.5 → iterations 0..=12.
        assert_eq!(first_half, 13);
        // Iteration k of the ramp is due at sqrt(2k) s.
        for k in [1u64, 8, 32, 49] {
            let expected = (2.0 * k as f64).sqrt();
            assert!((a[k as usize].as_secs_f64() - expected).abs() < 1e-6, "{k}");
        }
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // Ramping down 10 → 0 over 4 s: 20 iterations, sparser at the end.
        let down: Vec<_> =
            Arrivals::ramping(10.0, Duration::from_secs(1), &[s(4.0, 0.0)]).collect();
        assert_eq!(down.len(), 20);
        assert!(down.last().unwrap() < &Duration::from_secs(4));
    }

    #[test]
    fn the_length_of_stages() {
        assert_eq!(
            total(&[s(1.5, 1.0), s(2.0, 0.0)]),
            Duration::from_secs_f64(3.5)
        );
    }
}
