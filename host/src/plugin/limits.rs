//! Limits of one detector call, and the resource limiter that enforces the
//! memory, table and instance limits inside wasmtime.
//!
//! Every limit has a default and a `[limits]` key in the configuration file.
//! A call that breaches one fails for that cycle with a reason that names the
//! limit and its key.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// The limits of one detector call.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock time of one `detect` call, host calls included.
    pub deadline: Duration,
    /// Linear memory of one call, in bytes, summed over its memories.
    pub memory_bytes: u64,
    /// Elements of any one table.
    pub table_elements: u64,
    /// Core and component instances created by one call.
    pub instances: u64,
    /// WebAssembly stack, in bytes. It is set on the engine, so a change
    /// takes effect at the next start.
    pub stack_bytes: u64,
    /// Queries of one call.
    pub queries: u64,
    /// Rows of one query's result.
    pub rows: u64,
    /// Bytes of one query's result, as sent by the server.
    pub result_bytes: u64,
    /// Findings returned by one call.
    pub findings: u64,
    /// Bytes of one summary, one detail line or one text metric.
    pub summary_bytes: u64,
    /// Detail lines of one finding.
    pub details: u64,
    /// Metrics of one finding.
    pub metrics: u64,
    /// Log lines of one call; later lines are dropped and counted.
    pub log_lines: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            deadline: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 32,
            stack_bytes: 512 << 10,
            queries: 32,
            rows: 10_000,
            result_bytes: 4 << 20,
            findings: 64,
            summary_bytes: 1_000,
            details: 50,
            metrics: 32,
            log_lines: 200,
        }
    }
}

/// A limit that a call breached, kept so the failure can name it even when
/// the guest turns the refusal into a trap of its own (a Rust guest aborts
/// when an allocation fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Linear memory would have grown past the limit.
    Memory {
        /// Bytes the guest asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// Instantiation needed more instances (and their memories and tables)
    /// than the limit.
    Instances {
        /// The limit.
        limit: u64,
    },
    /// A table would have grown past the limit.
    TableElements {
        /// Elements the guest asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Memory { requested, limit } => write!(
                f,
                "linear memory limit reached: the plugin asked for {} but the limit is {} \
                 (setting limits.memory)",
                format_bytes(*requested),
                format_bytes(*limit)
            ),
            Breach::Instances { limit } => write!(
                f,
                "instance limit reached: the component needs more than {limit} instances \
                 (setting limits.instances)"
            ),
            Breach::TableElements { requested, limit } => write!(
                f,
                "table limit reached: the plugin asked for {requested} elements but the limit \
                 is {limit} (setting limits.table_elements)"
            ),
        }
    }
}

/// Enforces memory and table limits for one store and records the peak
/// linear memory and the first breach.
#[derive(Debug)]
pub struct CallLimiter {
    memory_limit: u64,
    table_limit: u64,
    instance_limit: u64,
    /// Bytes of linear memory in use, summed over the store's memories.
    memory_in_use: u64,
    /// Highest value of `memory_in_use` seen.
    pub peak_memory: u64,
    /// The first limit the call breached.
    pub breach: Option<Breach>,
}

impl CallLimiter {
    /// Creates a limiter for one call.
    pub fn new(limits: &Limits) -> CallLimiter {
        CallLimiter {
            memory_limit: limits.memory_bytes,
            table_limit: limits.table_elements,
            instance_limit: limits.instances,
            memory_in_use: 0,
            peak_memory: 0,
            breach: None,
        }
    }

    fn record(&mut self, breach: Breach) {
        if self.breach.is_none() {
            self.breach = Some(breach);
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = (desired - current) as u64;
        let total = self.memory_in_use + growth;
        if total > self.memory_limit {
            self.record(Breach::Memory {
                requested: total,
                limit: self.memory_limit,
            });
            return Ok(false);
        }
        self.memory_in_use = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_limit {
            self.record(Breach::TableElements {
                requested: desired as u64,
                limit: self.table_limit,
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        usize::try_from(self.instance_limit).unwrap_or(usize::MAX)
    }

    fn tables(&self) -> usize {
        // Each instance has a handful of tables at most; the element limit
        // is what bounds memory, so the count only needs to be finite.
        usize::try_from(self.instance_limit.saturating_mul(4)).unwrap_or(usize::MAX)
    }

    fn memories(&self) -> usize {
        usize::try_from(self.instance_limit).unwrap_or(usize::MAX)
    }
}

/// Formats a byte count with a binary unit, as the configuration accepts it.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes % size == 0 {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_growth_past_limit_is_refused_and_recorded() {
        let limits = Limits {
            memory_bytes: 2 << 20,
            ..Limits::default()
        };
        let mut limiter = CallLimiter::new(&limits);

        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert_eq!(limiter.peak_memory, 1 << 20);
        assert_eq!(
            limiter.breach,
            Some(Breach::Memory {
                requested: 3 << 20,
                limit: 2 << 20
            })
        );
    }

    #[test]
    fn breach_message_names_setting() {
        let breach = Breach::Memory {
            requested: 65 << 20,
            limit: 64 << 20,
        };
        let text = breach.to_string();
        assert!(text.contains("limits.memory"), "{text}");
        assert!(text.contains("64 MiB"), "{text}");
    }

    #[test]
    fn bytes_are_formatted_with_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
    }
}
