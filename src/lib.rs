//! kube-field-exporter: turns the fields of any Kubernetes object into Prometheus series.
//!
//! Pipeline (DESIGN.md §1): sources → [`flatten`] (pure) → collection
//! ([`exposition`] offline) → [`encode`] (text format 0.0.4).

#![forbid(unsafe_code)]

pub mod cli;
pub mod crd;
pub mod describe;
pub mod discovery;
pub mod encode;
pub mod exposition;
pub mod flatten;
pub mod gzip;
pub mod input;
pub mod offline;
pub mod openapi;
pub mod render;
pub mod resource;
pub mod schema;
pub mod schema_cmd;
pub mod schema_source;
pub mod serve;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod watch;
