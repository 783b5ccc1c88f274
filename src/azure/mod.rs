//! Azure: Entra ID authentication ([`auth`], with Azure Pipelines' service
//! connections in [`pipelines`]) and the Resource Manager
//! client with long-running-operation polling and throttling ([`arm`]).
//! Platform specifics (App Service slots, Container Apps revisions) live in
//! `platform/`, on top of these.

pub mod arm;
pub mod auth;
pub mod pipelines;
