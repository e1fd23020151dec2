//! Metrics export: Prometheus text exposition and remote-write.
