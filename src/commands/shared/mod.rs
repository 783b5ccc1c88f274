//! What several commands share, so that no command imports another:
//! [`records`] (the incident timeline, GitHub deployments and notifications
//! after a deploy, rollback or cherry-pick) and [`service`] (the lock, the
//! journals, restoring a dead holder's change, the post stage, and the
//! verified deploy and rollback of one service that `deploy` and `rollback`
//! both run), and [`platforms`] (the one place platforms are told apart).

pub mod platforms;
pub mod records;
pub mod service;
