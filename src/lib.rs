//! expedite: the expedited hotfix path for services on Azure, as a GitHub
//! container action and a CLI.
//!
//! Modules by concern; dependencies point inward (see ARCHITECTURE.md):
//! - [`action`]: the runner contract (inputs, outputs, summary, annotations,
//!   masks, state for the post stage);
//! - [`config`]: raw inputs → validated types, in one place;
//! - [`cli`]: the command line, generated from the same input table;
//! - [`app`]: one run from arguments to exit code; [`cancel`]: signals and
//!   deadline; [`commands`]: the commands;
//! - [`gate`]: critical-test and security gate; [`report`]: summaries;
//! - [`breaker`]: the statistical canary circuit breaker (pure) and its simulator;
//! - [`azure`], [`kube`]: the connections to Azure and to a Kubernetes API
//!   server (credentials, errors by what the caller does).
pub mod action;
pub mod app;
pub mod archive;
pub mod azure;
pub mod breaker;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod config;
pub mod gate;
pub mod git;
pub mod github;
pub mod http;
pub mod kube;
pub mod lock;
pub mod manifest;
pub mod notify;
pub mod platform;
pub mod probe;
pub mod report;
pub mod rollout;
pub mod text;
