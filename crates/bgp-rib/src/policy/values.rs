//! Values written inside rules, each with its textual form: prefix ranges, metric ranges,
//! standard (RFC 1997) and large (RFC 8092) communities.

use std::borrow::Cow;
use std::str::FromStr;

use bgp_proto::{Community, LargeCommunity};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A prefix with an allowed length range.
///
/// Without `ge`, `le` or `orlonger` only the prefix itself matches ("equal"). `orlonger`
/// allows every more specific prefix; `ge`/`le` bound the length (`ge` alone means up to the
/// host length, `le` alone means from the prefix's own length).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PrefixRange {
    pub prefix: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orlonger: bool,
}

impl PrefixRange {
    /// Exactly this prefix.
    pub fn exact(prefix: IpNet) -> Self {
        PrefixRange {
            prefix,
            ge: None,
            le: None,
            orlonger: false,
        }
    }

    /// This prefix or any more specific one.
    pub fn orlonger(prefix: IpNet) -> Self {
        PrefixRange {
            orlonger: true,
            ..Self::exact(prefix)
        }
    }

    /// More specifics of `prefix` whose length lies in `ge..=le`.
    pub fn range(prefix: IpNet, ge: u8, le: u8) -> Self {
        PrefixRange {
            ge: Some(ge),
            le: Some(le),
            ..Self::exact(prefix)
        }
    }

    /// The inclusive length bounds this range allows.
    fn bounds(&self) -> (u8, u8) {
        let own = self.prefix.prefix_len();
        let max = self.prefix.max_prefix_len();
        match (self.ge, self.le, self.orlonger) {
            (None, None, false) => (own, own),
            (None, None, true) => (own, max),
            (Some(ge), None, _) => (ge, max),
            (None, Some(le), _) => (own, le),
            (Some(ge), Some(le), _) => (ge, le),
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let own = self.prefix.prefix_len();
        let max = self.prefix.max_prefix_len();
        let (lo, hi) = self.bounds();
        if lo < own || hi > max || lo > hi {
            return Err(format!(
                "prefix range {} ge {:?} le {:?}: need {own} <= ge <= le <= {max}",
                self.prefix, self.ge, self.le
            ));
        }
        Ok(())
    }

    /// Whether `p` lies in this range.
    pub fn contains(&self, p: &IpNet) -> bool {
        let (lo, hi) = self.bounds();
        let len = p.prefix_len();
        len >= lo && len <= hi && self.prefix.contains(p)
    }
}

/// Inclusive range of kernel route metrics (`max = 1023` reads "below 1024").
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MetricRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

impl MetricRange {
    pub fn contains(&self, m: u32) -> bool {
        self.min.is_none_or(|lo| m >= lo) && self.max.is_none_or(|hi| m <= hi)
    }
}

/// A standard community written `"65000:100"` or by well-known name (`"no_export"`,
/// `"no_advertise"`, `"no_export_subconfed"`, `"llgr_stale"`, `"no_llgr"`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StdCommunity(pub Community);

impl FromStr for StdCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let c = match s {
            "no_export" => Community::NO_EXPORT,
            "no_advertise" => Community::NO_ADVERTISE,
            "no_export_subconfed" => Community::NO_EXPORT_SUBCONFED,
            "llgr_stale" => Community::LLGR_STALE,
            "no_llgr" => Community::NO_LLGR,
            _ => {
                let (a, b) = s
                    .split_once(':')
                    .ok_or_else(|| format!("community {s:?}: expected ASN:VALUE"))?;
                let a: u16 = a.parse().map_err(|e| format!("community {s:?}: {e}"))?;
                let b: u16 = b.parse().map_err(|e| format!("community {s:?}: {e}"))?;
                Community::new(a, b)
            }
        };
        Ok(StdCommunity(c))
    }
}

impl Serialize for StdCommunity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StdCommunity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A large community written `"64512:1:2"` (RFC 8092).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LargeCommunityValue(pub LargeCommunity);

impl FromStr for LargeCommunityValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let mut next = || -> Result<u32, String> {
            it.next()
                .ok_or_else(|| format!("large community {s:?}: expected A:B:C"))?
                .parse()
                .map_err(|e| format!("large community {s:?}: {e}"))
        };
        let (global, local1, local2) = (next()?, next()?, next()?);
        if it.next().is_some() {
            return Err(format!("large community {s:?}: expected A:B:C"));
        }
        Ok(LargeCommunityValue(LargeCommunity {
            global,
            local1,
            local2,
        }))
    }
}

impl Serialize for LargeCommunityValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LargeCommunityValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
