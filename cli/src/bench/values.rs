//! The values `lessor bench` parses: counts (`1e6`), durations (`250ms`), TTL distributions
//! ([`TtlDist`]), fsync policies (`always`, `interval:10ms`, `never`), gRPC operations
//! ([`GrpcOp`]) and endpoints. Each parser returns a message that says what to write instead.

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;
use lessor::FsyncPolicy;

use super::args::MAX_LEASES;

/// etcd's largest TTL, 9,000,000,000 s (lessor's `MAX_TTL`).
const MAX_TTL: Duration = lessor::MAX_TTL;

// ===== TTL distributions =====

/// How TTLs are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtlDist {
    /// Every lease gets this TTL.
    Fixed(Duration),
    /// Uniform over whole milliseconds from `lo` to `hi`, both included.
    Uniform(Duration, Duration),
}

impl TtlDist {
    /// Parses `fixed:60s`, `uniform:1s..10s` or a bare duration.
    pub(crate) fn parse(s: &str) -> Result<TtlDist, String> {
        let s = s.trim();
        let dist = if let Some(rest) = s.strip_prefix("fixed:") {
            TtlDist::Fixed(parse_duration(rest)?)
        } else if let Some(rest) = s.strip_prefix("uniform:") {
            let (lo, hi) = rest
                .split_once("..")
                .ok_or_else(|| format!("`{s}`: a uniform TTL is written uniform:LO..HI"))?;
            let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
            if lo > hi {
                return Err(format!("`{s}`: the low end is above the high end"));
            }
            TtlDist::Uniform(lo, hi)
        } else if s.contains(':') {
            return Err(format!(
                "`{s}`: unknown distribution; use fixed:DURATION or uniform:LO..HI"
            ));
        } else {
            TtlDist::Fixed(parse_duration(s)?)
        };
        let (lo, hi) = dist.bounds();
        if lo < Duration::from_millis(1) {
            return Err(format!("`{s}`: TTLs must be at least 1ms"));
        }
        if hi > MAX_TTL {
            return Err(format!(
                "`{s}`: TTLs must be at most 9000000000s (etcd's limit)"
            ));
        }
        Ok(dist)
    }

    /// The smallest and largest TTL the distribution can give.
    pub(crate) fn bounds(self) -> (Duration, Duration) {
        match self {
            TtlDist::Fixed(d) => (d, d),
            TtlDist::Uniform(lo, hi) => (lo, hi),
        }
    }

    /// Draws one TTL (whole milliseconds) from a random word.
    pub(crate) fn sample(self, random: u64) -> Duration {
        match self {
            TtlDist::Fixed(d) => d,
            TtlDist::Uniform(lo, hi) => {
                let (lo_ms, hi_ms) = (millis(lo), millis(hi));
                Duration::from_millis(lo_ms + random % (hi_ms - lo_ms + 1))
            }
        }
    }
}

impl fmt::Display for TtlDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlDist::Fixed(d) => write!(f, "fixed:{}", show_duration(*d)),
            TtlDist::Uniform(lo, hi) => {
                write!(f, "uniform:{}..{}", show_duration(*lo), show_duration(*hi))
            }
        }
    }
}

/// Whole milliseconds of `d` (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `d` in whole seconds when it is a whole number of them (`60s`), else in ms (`1500ms`).
pub(crate) fn show_duration(d: Duration) -> String {
    let ms = millis(d);
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

// ===== value parsers =====

/// A count: `1000`, `1_000_000`, `1e6`, `2.5e5`.
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let bad = || format!("`{s}` is not a count (write 1000, 1_000_000 or 1e6)");
    let n = if let Some((m, e)) = t.split_once(['e', 'E']) {
        let m: f64 = m.parse().map_err(|_| bad())?;
        let e: i32 = e.parse().map_err(|_| bad())?;
        let v = m * 10f64.powi(e);
        if !(0.0..=1e18).contains(&v) || v.fract() != 0.0 {
            return Err(bad());
        }
        v as u64
    } else {
        t.parse().map_err(|_| bad())?
    };
    if n == 0 || n > MAX_LEASES {
        return Err(format!("`{s}`: must be from 1 to {MAX_LEASES}"));
    }
    Ok(n)
}

/// A duration: `250ms`, `1.5s`, `2m`, `1h`, `500us`; a bare number is seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a duration (write 250ms, 1.5s, 2m or 1h)");
    let v: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("`{s}`: must be from 0.01 to 3600 seconds"));
    }
    Ok(d.as_secs_f64())
}

pub(crate) fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}`: must be from 0 to 1"));
    }
    Ok(v)
}

pub(crate) fn parse_tick(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(1) {
        return Err(format!("`{s}`: the tick must be from 1ms to 1s"));
    }
    Ok(d)
}

// ===== fsync policies =====

/// `--fsync interval` without a value: the server's default interval.
pub(crate) const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(10);

/// Parses an fsync policy: `always`, `never`, `interval` (10ms) or `interval:DURATION`.
pub(crate) fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    let t = s.trim();
    match t {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        "interval" => Ok(FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL)),
        _ => {
            let Some(d) = t.strip_prefix("interval:") else {
                return Err(format!(
                    "`{s}`: an fsync policy is always, interval, interval:DURATION or never"
                ));
            };
            let d = parse_duration(d)?;
            if d < Duration::from_millis(1) || d > Duration::from_secs(60) {
                return Err(format!("`{s}`: the interval must be from 1ms to 60s"));
            }
            Ok(FsyncPolicy::Interval(d))
        }
    }
}

/// An fsync policy as `--fsync` takes it: `always`, `interval:10ms`, `never`.
pub(crate) fn show_fsync(p: FsyncPolicy) -> String {
    match p {
        FsyncPolicy::Always => "always".into(),
        FsyncPolicy::Never => "never".into(),
        FsyncPolicy::Interval(d) => format!("interval:{}", show_duration(d)),
    }
}

// ===== gRPC =====

/// One operation of the `grpc` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum GrpcOp {
    /// `LeaseGrant` with a server-chosen id.
    Grant,
    /// One request and its response on a `LeaseKeepAlive` stream (one stream per client).
    KeepAlive,
    /// `LeaseRevoke` of a lease granted beforehand, outside the timed part.
    Revoke,
}

impl GrpcOp {
    /// Every operation, in the order they run.
    pub(crate) const ALL: [GrpcOp; 3] = [GrpcOp::Grant, GrpcOp::KeepAlive, GrpcOp::Revoke];

    /// The name on the command line and in the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GrpcOp::Grant => "grant",
            GrpcOp::KeepAlive => "keep-alive",
            GrpcOp::Revoke => "revoke",
        }
    }
}

/// Parses an endpoint: `http://HOST:PORT` (a bare `HOST:PORT` gets `http://`). TLS is not
/// supported: etcd's and lessor's plain client ports are what the harness loads.
pub(crate) fn parse_endpoint(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    if t.starts_with("https://") {
        return Err(format!(
            "`{s}`: TLS endpoints are not supported; use http://"
        ));
    }
    let url = if t.starts_with("http://") {
        t.to_string()
    } else if t.contains("://") {
        return Err(format!("`{s}`: an endpoint is http://HOST:PORT"));
    } else {
        format!("http://{t}")
    };
    let hostport = &url["http://".len()..];
    let port = hostport
        .rsplit_once(':')
        .and_then(|(host, port)| (!host.is_empty()).then_some(port))
        .ok_or_else(|| format!("`{s}`: an endpoint is http://HOST:PORT (the port is needed)"))?;
    if port.parse::<u16>().map_or(true, |p| p == 0) || hostport.contains('/') {
        return Err(format!(
            "`{s}`: an endpoint is http://HOST:PORT with a port from 1 to 65535"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("1e6"), Ok(1_000_000));
        assert_eq!(parse_count("2.5e5"), Ok(250_000));
        assert!(parse_count("0").is_err());
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("1e9").is_err());
        assert!(parse_count("ten").is_err());
        assert!(parse_count("1.23e1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn ttl_distributions() {
        let s = Duration::from_secs;
        assert_eq!(TtlDist::parse("fixed:60s"), Ok(TtlDist::Fixed(s(60))));
        assert_eq!(TtlDist::parse("60s"), Ok(TtlDist::Fixed(s(60))));
        assert_eq!(
            TtlDist::parse("uniform:1s..10s"),
            Ok(TtlDist::Uniform(s(1), s(10)))
        );
        assert!(TtlDist::parse("uniform:10s..1s").is_err());
        assert!(TtlDist::parse("uniform:1s").is_err());
        assert!(TtlDist::parse("normal:1s").is_err());
        assert!(TtlDist::parse("fixed:0s").is_err());
        assert!(TtlDist::parse("fixed:9000000001s").is_err());
        for text in [
            "fixed:60s",
            "uniform:1s..10s",
            "fixed:1500ms",
            "fixed:7200s",
        ] {
            assert_eq!(TtlDist::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn uniform_samples_stay_in_bounds_and_reach_both_ends() {
        let d = TtlDist::Uniform(Duration::from_millis(10), Duration::from_millis(12));
        let got: Vec<u64> = (0..30).map(|r| millis(d.sample(r))).collect();
        assert!(got.iter().all(|ms| (10..=12).contains(ms)));
        assert!(got.contains(&10) && got.contains(&12));
    }

    #[test]
    fn fsync_policies() {
        assert_eq!(parse_fsync("always"), Ok(FsyncPolicy::Always));
        assert_eq!(parse_fsync("never"), Ok(FsyncPolicy::Never));
        let ten = FsyncPolicy::Interval(Duration::from_millis(10));
        assert_eq!(parse_fsync("interval"), Ok(ten));
        assert_eq!(parse_fsync("interval:10ms"), Ok(ten));
        assert!(parse_fsync("interval:0s").is_err());
        assert!(parse_fsync("sometimes").is_err());
        for text in ["always", "interval:10ms", "interval:2s", "never"] {
            assert_eq!(show_fsync(parse_fsync(text).unwrap()), text);
        }
    }

    #[test]
    fn endpoints() {
        let ok = |s: &str| parse_endpoint(s).unwrap();
        assert_eq!(ok("http://127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(ok("127.0.0.1:2379/"), "http://127.0.0.1:2379");
        assert_eq!(ok("http://localhost:23790"), "http://localhost:23790");
        for bad in [
            "https://x:1",
            "grpc://x:1",
            "http://x",
            "http://x:0",
            "x:99999",
            ":1",
            "http://x:1/a",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
