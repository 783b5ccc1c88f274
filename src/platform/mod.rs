//! The platforms' clients, one file each: their ARM operations and typed
//! answers (App Service slots, routing rules, swap and Kudu; Container Apps
//! revisions and traffic weights; Static Web Apps environments and zip
//! deployments). What a rollout does with them is under `rollout/`, each
//! registered once in [`crate::rollout::platforms`].

pub mod app_service;
pub mod container_apps;
pub mod kubernetes;
pub mod static_web_apps;
