//! [`Config`]: what a server needs to start, with etcd's flag names where etcd has them, and
//! the parsers that turn flag text (`http://127.0.0.1:2379,...`, `interval:10`) into it.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lessor::FsyncPolicy;

/// etcd's `--max-request-bytes` default: a request (a put's key and value, mostly) may be at
/// most 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 3 << 19;

/// What gRPC adds on top of the request limit before it refuses to decode a message at all
/// (etcd's `grpcOverheadBytes`, 512 KiB). Requests between the two limits are decoded and
/// answered with etcd's "request is too large".
pub const GRPC_OVERHEAD_BYTES: usize = 512 << 10;

/// The interval `--fsync interval` uses when it names none.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(10);

/// How a server is set up.
///
/// Build one with [`Config::new`] and adjust the public fields.
///
/// # Examples
///
/// ```
/// use lessor_server::{Config, HttpUrl};
/// use std::time::Duration;
///
/// let mut config = Config::new("/tmp/lessor-doc-config");
/// config.listen_client_urls = vec!["http://127.0.0.1:0".parse::<HttpUrl>()?];
/// config.min_ttl = Duration::from_millis(500);
/// assert_eq!(config.name, "default");
/// # Ok::<(), lessor_server::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where the lessor keeps its write-ahead log (etcd's `--data-dir`). Created if missing.
    pub data_dir: PathBuf,
    /// This member's human-readable name (etcd's `--name`), shown by `member list`.
    pub name: String,
    /// Where to serve the gRPC client API (etcd's `--listen-client-urls`). Port 0 picks a free
    /// port; [`Server::client_addrs`](crate::Server::client_addrs) tells which.
    pub listen_client_urls: Vec<HttpUrl>,
    /// Where to serve member-to-member lease forwarding (etcd's `--listen-peer-urls`).
    pub listen_peer_urls: Vec<HttpUrl>,
    /// The client URLs this member tells clients about (etcd's `--advertise-client-urls`).
    /// Empty: the addresses the client listeners are bound to.
    pub advertise_client_urls: Vec<HttpUrl>,
    /// When a logged change is durable.
    pub fsync: FsyncPolicy,
    /// The expiry wheel's tick: how late past its deadline a lease may be revoked.
    pub tick: Duration,
    /// A lease asked for with a shorter TTL gets this one (etcd: 2 s).
    pub min_ttl: Duration,
    /// The largest request, in bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// How long a shutdown waits for in-flight calls before it closes their connections.
    pub shutdown_grace: Duration,
}

impl Config {
    /// etcd's defaults: clients on `http://127.0.0.1:2379`, peers on `http://127.0.0.1:2380`,
    /// name `default`, fsync before every acknowledgement, a 10 ms tick, a 2 s minimum TTL,
    /// 1.5 MiB requests.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = lessor_server::Config::new("./default.lessor");
    /// assert_eq!(config.listen_client_urls[0].to_string(), "http://127.0.0.1:2379");
    /// ```
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            name: "default".to_owned(),
            listen_client_urls: vec![HttpUrl::loopback(2379)],
            listen_peer_urls: vec![HttpUrl::loopback(2380)],
            advertise_client_urls: Vec::new(),
            fsync: FsyncPolicy::Always,
            tick: Duration::from_millis(10),
            min_ttl: Duration::from_secs(2),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A `http://host:port` URL, the only kind the server listens on.
///
/// # Examples
///
/// ```
/// use lessor_server::HttpUrl;
///
/// let url: HttpUrl = "http://localhost:2379".parse()?;
/// assert_eq!(url.host(), "localhost");
/// assert_eq!(url.port(), 2379);
/// assert!("https://127.0.0.1:2379".parse::<HttpUrl>().is_err());
/// # Ok::<(), lessor_server::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    host: String,
    port: u16,
}

impl HttpUrl {
    fn loopback(port: u16) -> Self {
        HttpUrl {
            host: "127.0.0.1".to_owned(),
            port,
        }
    }

    /// A URL for a bound socket address.
    ///
    /// # Examples
    ///
    /// ```
    /// let url = lessor_server::HttpUrl::from_addr(([127, 0, 0, 1], 80).into());
    /// assert_eq!(url.to_string(), "http://127.0.0.1:80");
    /// ```
    pub fn from_addr(addr: SocketAddr) -> Self {
        HttpUrl {
            host: match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            },
            port: addr.port(),
        }
    }

    /// The host: an IP address (IPv6 in brackets) or a name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket addresses the host resolves to, to bind.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Resolve`] when the host name does not resolve.
    pub fn socket_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|source| ConfigError::Resolve {
                url: self.to_string(),
                source,
            })
            .and_then(|addrs: Vec<SocketAddr>| {
                if addrs.is_empty() {
                    Err(ConfigError::Resolve {
                        url: self.to_string(),
                        source: std::io::Error::other("no address"),
                    })
                } else {
                    Ok(addrs)
                }
            })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl FromStr for HttpUrl {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::BadUrl {
            url: s.to_owned(),
            reason,
        };
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are served (no TLS)"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a listen URL has no path"));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("the URL needs a port, as in http://127.0.0.1:2379"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if host.is_empty() || (host.contains(':') && !bracketed) {
            return Err(bad("the host must be a name, an IPv4 address or [IPv6]"));
        }
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
        })
    }
}

/// Parses a comma-separated list of URLs, as etcd's `--listen-client-urls` takes them.
///
/// # Errors
///
/// [`ConfigError::BadUrl`] for the first URL that is not `http://host:port`, or an empty list.
///
/// # Examples
///
/// ```
/// let urls = lessor_server::parse_urls("http://127.0.0.1:2379, http://[::1]:2379")?;
/// assert_eq!(urls.len(), 2);
/// # Ok::<(), lessor_server::ConfigError>(())
/// ```
pub fn parse_urls(list: &str) -> Result<Vec<HttpUrl>, ConfigError> {
    let urls = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<HttpUrl>, _>>()?;
    if urls.is_empty() {
        return Err(ConfigError::BadUrl {
            url: list.to_owned(),
            reason: "give at least one URL",
        });
    }
    Ok(urls)
}

/// Parses an fsync policy: `always`, `never`, `interval` (10 ms) or `interval:<ms>`.
///
/// # Errors
///
/// [`ConfigError::BadFsync`] for anything else.
///
/// # Examples
///
/// ```
/// use lessor::FsyncPolicy;
/// use std::time::Duration;
///
/// assert_eq!(lessor_server::parse_fsync("always")?, FsyncPolicy::Always);
/// assert_eq!(
///     lessor_server::parse_fsync("interval:25")?,
///     FsyncPolicy::Interval(Duration::from_millis(25))
/// );
/// assert!(lessor_server::parse_fsync("sometimes").is_err());
/// # Ok::<(), lessor_server::ConfigError>(())
/// ```
pub fn parse_fsync(text: &str) -> Result<FsyncPolicy, ConfigError> {
    let bad = || ConfigError::BadFsync {
        given: text.to_owned(),
    };
    match text.trim() {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        "interval" => Ok(FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL)),
        other => {
            let ms = other.strip_prefix("interval:").ok_or_else(bad)?;
            let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
            if ms == 0 {
                return Err(bad());
            }
            Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
        }
    }
}

/// A configuration value that cannot be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL is not `http://host:port`.
    #[error("bad URL `{url}`: {reason}")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A listen URL's host does not resolve to an address.
    #[error("cannot resolve the host of `{url}`: {source}; use an IP address or a known name")]
    Resolve {
        /// The URL.
        url: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// An fsync policy is not one of the known ones.
    #[error("bad fsync policy `{given}`: use always, never, interval or interval:<ms> (ms >= 1)")]
    BadFsync {
        /// The text given.
        given: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let u: HttpUrl = "http://127.0.0.1:2379/".parse().unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:2379");
        let v6: HttpUrl = "http://[::1]:0".parse().unwrap();
        assert_eq!(v6.socket_addrs().unwrap()[0].port(), 0);
        for bad in [
            "127.0.0.1:2379",
            "https://127.0.0.1:2379",
            "http://127.0.0.1",
            "http://127.0.0.1:99999",
            "http://::1:2379",
            "http://127.0.0.1:2379/v3",
            "http://:2379",
        ] {
            assert!(bad.parse::<HttpUrl>().is_err(), "{bad} parsed");
        }
        assert!(parse_urls(" , ").is_err());
        assert_eq!(
            HttpUrl::from_addr("[::1]:5".parse().unwrap()).to_string(),
            "http://[::1]:5"
        );
    }

    #[test]
    fn fsync_policies_parse() {
        assert_eq!(parse_fsync("never").unwrap(), FsyncPolicy::Never);
        assert_eq!(
            parse_fsync("interval").unwrap(),
            FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL)
        );
        assert!(parse_fsync("interval:0").is_err());
        assert!(parse_fsync("interval:x").is_err());
    }
}
