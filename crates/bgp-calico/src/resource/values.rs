//! Scalar value types of Calico's API as they appear in YAML and JSON: AS numbers written
//! as numbers, decimal strings or `asdot` ("1.10"), and Kubernetes durations ("90s", "1m30s").
//!
//! Both deserialize leniently in what Calico itself accepts and fail with a message naming
//! the value otherwise.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An AS number (`numorstring.ASNumber`): a JSON number, a decimal string, or `asdot`
/// notation `"HIGH.LOW"` (RFC 5396).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Parses the textual forms.
    pub fn parse(s: &str) -> Result<AsNumber, String> {
        let s = s.trim();
        if let Some((hi, lo)) = s.split_once('.') {
            let hi: u16 = hi.parse().map_err(|_| format!("invalid AS number {s:?}"))?;
            let lo: u16 = lo.parse().map_err(|_| format!("invalid AS number {s:?}"))?;
            return Ok(AsNumber((u32::from(hi) << 16) | u32::from(lo)));
        }
        s.parse()
            .map(AsNumber)
            .map_err(|_| format!("invalid AS number {s:?}"))
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number (number, decimal string or asdot \"1.10\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AsNumber, E> {
                // YAML reads an unquoted `1.10` as the float 1.1: the asdot value is lost.
                Err(E::custom(format!(
                    "AS number {v} is a decimal number; quote asdot AS numbers (\"1.10\")"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
                AsNumber::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kubernetes `metav1.Duration` (Go `time.ParseDuration` syntax: `"1h2m3.5s"`, `"300ms"`),
/// kept in milliseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration {
    /// Milliseconds (negative durations are refused).
    pub millis: u64,
}

impl Duration {
    /// Whole seconds, rounded half away from zero (what confd renders with `math.Round`).
    pub fn rounded_secs(self) -> u64 {
        (self.millis + 500) / 1000
    }

    /// Parses Go's duration syntax: a sequence of decimal numbers with units `h`, `m`, `s`,
    /// `ms`, `us`/`µs`, `ns`; `"0"` alone is zero.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let bad = || format!("invalid duration {s:?}");
        let t = s.trim();
        if t == "0" {
            return Ok(Duration { millis: 0 });
        }
        if t.is_empty() || t.starts_with('-') {
            return Err(bad());
        }
        let t = t.strip_prefix('+').unwrap_or(t);
        let mut nanos: f64 = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let (num, tail) = rest.split_at(num_len);
            let value: f64 = num.parse().map_err(|_| bad())?;
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = match unit {
                "h" => 3.6e12,
                "m" => 6e10,
                "s" => 1e9,
                "ms" => 1e6,
                "us" | "µs" | "μs" => 1e3,
                "ns" => 1.0,
                _ => return Err(bad()),
            };
            nanos += value * scale;
            rest = tail;
        }
        if !nanos.is_finite() || nanos > 1e18 {
            return Err(bad());
        }
        Ok(Duration {
            millis: (nanos / 1e6).round() as u64,
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, millis) = (self.millis / 1000, self.millis % 1000);
        if millis == 0 {
            write!(f, "{secs}s")
        } else {
            write!(f, "{}ms", self.millis)
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_numbers() {
        assert_eq!(AsNumber::parse("64512").unwrap(), AsNumber(64512));
        assert_eq!(AsNumber::parse("1.10").unwrap(), AsNumber(65546));
        assert!(AsNumber::parse("x").is_err());
        assert!(AsNumber::parse("70000.1").is_err());
        let n: AsNumber = serde_json::from_str("4200000000").unwrap();
        assert_eq!(n.0, 4_200_000_000);
        let s: AsNumber = serde_json::from_str("\"65001\"").unwrap();
        assert_eq!(s.0, 65001);
        assert!(serde_json::from_str::<AsNumber>("5000000000").is_err());
        let y: AsNumber = yaml_serde::from_str("'1.10'").unwrap();
        assert_eq!(y.0, 65546);
        assert!(yaml_serde::from_str::<AsNumber>("1.10").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("10s").unwrap().millis, 10_000);
        assert_eq!(Duration::parse("1m30s").unwrap().millis, 90_000);
        assert_eq!(Duration::parse("1h").unwrap().millis, 3_600_000);
        assert_eq!(Duration::parse("1.5s").unwrap().rounded_secs(), 2);
        assert_eq!(Duration::parse("1400ms").unwrap().rounded_secs(), 1);
        assert_eq!(Duration::parse("0").unwrap().millis, 0);
        assert!(Duration::parse("-1s").is_err());
        assert!(Duration::parse("10").is_err());
        assert!(Duration::parse("10x").is_err());
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("s").is_err());
    }
}
