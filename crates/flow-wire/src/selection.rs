//! Packet selection as PSAMP (RFC 5475, 5476, 5477) and the older NetFlow
//! elements announce it, turned into a scale: how many packets on the
//! wire each selected packet stands for.
//!
//! | selectorAlgorithm (304) | parameters | scale |
//! |---|---|---|
//! | 1 systematic count-based | samplingPacketInterval (305) n, samplingPacketSpace (306) s | (n + s) / n |
//! | 2 systematic time-based | samplingTimeInterval (307) t, samplingTimeSpace (308) u | (t + u) / t |
//! | 3 random n-out-of-N | samplingSize (309) n, samplingPopulation (310) N | N / n |
//! | 4 uniform probabilistic | samplingProbability (311) p | 1 / p |
//! | 5 property match filtering | — | 1 (every matching packet is reported) |
//! | 6, 7, 8 hash-based filtering | hashOutputRange (329, 330), hashSelectedRange (331, 332) | output range / selected range |
//! | anything else (9: RFC 7014 flow-state dependent) | — | unsupported |
//!
//! Without a selectorAlgorithm the parameters speak for themselves:
//! samplingInterval (34) or samplerRandomInterval (50) is 1 in N, then
//! n-out-of-N, count-based, time-based and probabilistic in that order.
//! Time-based selection scales packets by time, which holds for traffic
//! spread evenly over the interval; it is the estimate RFC 5475 gives.

use crate::exporter::Scale;

/// A selector's parameters as read from a record (absent ones `None`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Selector {
    pub algorithm: Option<u64>,
    pub interval: Option<u64>,
    pub packet_interval: Option<u64>,
    pub packet_space: Option<u64>,
    pub time_interval: Option<u64>,
    pub time_space: Option<u64>,
    pub size: Option<u64>,
    pub population: Option<u64>,
    /// samplingProbability as a float.
    pub probability: Option<f64>,
    pub hash_output: Option<(u64, u64)>,
    pub hash_selected: Option<(u64, u64)>,
}

/// 2^32: the denominator a probability is expressed over.
const PROBABILITY_ONE: f64 = 4_294_967_296.0;

impl Selector {
    /// The scale these parameters announce, if they announce one.
    pub(crate) fn scale(&self) -> Option<Scale> {
        let Some(algorithm) = self.algorithm else {
            return self.without_algorithm();
        };
        let a = u16::try_from(algorithm).unwrap_or(u16::MAX);
        let scale = match a {
            1 => self.count_based(),
            2 => self.time_based(),
            3 => self.n_out_of_n(),
            4 => self.probabilistic(),
            5 => Scale::ratio(1, 1),
            6..=8 => self.hash_ranges(),
            _ => None,
        };
        Some(scale.unwrap_or(Scale::Unsupported(a)))
    }

    fn without_algorithm(&self) -> Option<Scale> {
        if let Some(n) = self.interval.filter(|&n| n > 0) {
            return Scale::ratio(n, 1);
        }
        self.n_out_of_n()
            .or_else(|| self.count_based())
            .or_else(|| self.time_based())
            .or_else(|| self.probabilistic())
    }

    fn count_based(&self) -> Option<Scale> {
        let n = self.packet_interval.filter(|&n| n > 0)?;
        Scale::ratio(n.saturating_add(self.packet_space.unwrap_or(0)), n)
    }

    fn time_based(&self) -> Option<Scale> {
        let t = self.time_interval.filter(|&t| t > 0)?;
        Scale::ratio(t.saturating_add(self.time_space.unwrap_or(0)), t)
    }

    fn n_out_of_n(&self) -> Option<Scale> {
        let n = self.size.filter(|&n| n > 0)?;
        let population = self.population.filter(|&p| p >= n)?;
        Scale::ratio(population, n)
    }

    fn probabilistic(&self) -> Option<Scale> {
        let p = self.probability.filter(|p| *p > 0.0 && *p <= 1.0)?;
        let selected = (p * PROBABILITY_ONE).round();
        // `p` is at most 1, so `selected` is at most 2^32 and exact.
        Scale::ratio(1 << 32, selected as u64)
    }

    fn hash_ranges(&self) -> Option<Scale> {
        let (out_min, out_max) = self.hash_output?;
        let (sel_min, sel_max) = self.hash_selected?;
        if out_max < out_min || sel_max < sel_min || sel_min < out_min || sel_max > out_max {
            return None;
        }
        // A full 64-bit range has 2^64 values: one less keeps it in u64
        // and changes the scale by 2^-64.
        let out = (out_max - out_min).saturating_add(1);
        let sel = (sel_max - sel_min).saturating_add(1);
        Scale::ratio(out, sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(s: Option<Scale>) -> (u64, u64) {
        match s {
            Some(Scale::Ratio {
                population,
                selected,
            }) => (population, selected),
            other => panic!("not a ratio: {other:?}"),
        }
    }

    #[test]
    fn each_algorithm_reads_its_own_parameters() {
        let mut s = Selector {
            algorithm: Some(3),
            packet_interval: Some(1),
            size: Some(1),
            population: Some(256),
            ..Selector::default()
        };
        assert_eq!(ratio(s.scale()), (256, 1), "n-out-of-N ignores 305");
        s.algorithm = Some(1);
        assert_eq!(ratio(s.scale()), (1, 1), "count-based ignores 309/310");
        s.algorithm = Some(5);
        assert_eq!(ratio(s.scale()), (1, 1));
    }

    #[test]
    fn missing_or_unknown_is_unsupported_not_one() {
        for a in [1u64, 2, 3, 4, 6, 7, 8, 9, 200, 70_000] {
            let s = Selector {
                algorithm: Some(a),
                ..Selector::default()
            };
            let want = u16::try_from(a).unwrap_or(u16::MAX);
            assert_eq!(s.scale(), Some(Scale::Unsupported(want)), "algorithm {a}");
        }
        assert_eq!(Selector::default().scale(), None);
    }

    #[test]
    fn n_greater_than_population_or_a_probability_above_one_is_not_a_rate() {
        let s = Selector {
            algorithm: Some(3),
            size: Some(10),
            population: Some(3),
            ..Selector::default()
        };
        assert_eq!(s.scale(), Some(Scale::Unsupported(3)));
        let s = Selector {
            algorithm: Some(4),
            probability: Some(1.5),
            ..Selector::default()
        };
        assert_eq!(s.scale(), Some(Scale::Unsupported(4)));
        let s = Selector {
            algorithm: Some(4),
            probability: Some(f64::NAN),
            ..Selector::default()
        };
        assert_eq!(s.scale(), Some(Scale::Unsupported(4)));
    }

    #[test]
    fn a_full_hash_range_does_not_overflow() {
        let s = Selector {
            algorithm: Some(6),
            hash_output: Some((0, u64::MAX)),
            hash_selected: Some((0, u64::MAX)),
            ..Selector::default()
        };
        assert_eq!(ratio(s.scale()), (u64::MAX, u64::MAX));
    }
}
