//! Traffic and slot providers. [`app_service`]: App Service slots, routing
//! rules, swap and Kudu deployment. (Container Apps revisions and weights
//! join here with the canary work, behind a small shared trait.)

pub mod app_service;
pub mod container_apps;
