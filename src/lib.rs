//! identity-operator: keep Asgardeo / WSO2 Identity Server identity providers (with JIT provisioning)
//! and applications (with MFA login flows) in Git, and flag when the two stop fitting together.
//!
//! The flow of data follows the folders: `api` (the custom resources) → `controller` (reconcilers) →
//! `backend` (the identity-server trait and its Asgardeo/WSO2 client) → the server. `flow` holds the pure
//! login-flow/conflict logic, `lint` the offline check for GitOps repos, `emulator` a local
//! Asgardeo-compatible server.

pub mod admission;
pub mod api;
pub mod audit;
pub mod backend;
pub mod bench;
pub mod controller;
pub mod emulator;
pub mod export;
pub mod flow;
pub mod leader;
pub mod lint;
pub mod telemetry;
pub mod webhook;
