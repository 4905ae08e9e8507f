//! identity-operator: keep Asgardeo / WSO2 Identity Server identity providers (with JIT provisioning)
//! and applications (with MFA login flows) in Git, and flag when the two stop fitting together.
//!
//! The workspace's crates show the flow, and Cargo enforces its direction:
//! `identity-model` (the login-flow graph, the conflict rule, script generation and proof; pure) ←
//! `identity-api` (the custom resources) and `identity-client` (the identity-server trait and its
//! Asgardeo / WSO2 client) ← this crate: `controller` (reconcilers), `webhook` and `admission`
//! (admission-time feedback), `lint`, `audit` and `export` (the offline and live checks), `leader`,
//! `telemetry`, and `run` (the composition root that wires them). The emulator (`identity-emulator`) and the bench (`identity-bench`) are crates and
//! binaries of their own; the operator does not depend on them.
//!
//! `api`, `backend` and `flow` below are those crates under the names the operator's code has always
//! used for them (`crate::backend::Error` reads as "the backend's error" at every call site).

pub mod admission;
pub mod audit;
pub mod controller;
pub mod duration;
pub mod export;
pub mod leader;
pub mod lint;
pub mod run;
pub mod telemetry;
pub mod webhook;

pub use identity_api as api;
pub use identity_client as backend;
pub use identity_model as flow;
