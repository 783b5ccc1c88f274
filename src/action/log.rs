//! The tracing subscriber: every `tracing` event goes through the
//! [`Console`], so it is redacted and formatted for the mode.
//!
//! In a job, `error!`/`warn!` become `::error::`/`::warning::` annotations
//! (fields `title`, `file`, `line` become their properties) and `debug!`
//! becomes `::debug::`; on a terminal they are plain lines on stderr.
//! Events from dependencies (HTTP, TLS) are shown only when asked for
//! (`-vv`, `EXPEDITE_DEBUG=2`), as debug lines, never as annotations: a
//! retry a library logs is not a failure of the run, and a connection pool's
//! chatter would bury expedite's own debug lines (`-v`).

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level as TLevel, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;

use super::console::Console;
use super::escape::{Annotation, Level};

/// Forwards events to a [`Console`].
pub struct ConsoleLayer {
    console: Console,
    libraries: bool,
}

impl ConsoleLayer {
    /// A layer writing expedite's events to `console`.
    pub fn new(console: Console) -> Self {
        ConsoleLayer {
            console,
            libraries: false,
        }
    }

    /// Also the dependencies' debug events (when the console shows debug).
    pub fn with_libraries(mut self, on: bool) -> Self {
        self.libraries = on;
        self
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    title: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    extra: String,
    /// `progress = true`: a status update, not a log line.
    progress: bool,
    /// `done = N`: how far the wait is, in percent (a pipeline's progress).
    done: Option<u8>,
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "progress" {
            self.progress = value;
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "title" => self.title = Some(value.to_string()),
            "file" => self.file = Some(value.to_string()),
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "line" {
            self.line = u32::try_from(value).ok();
        } else if field.name() == "done" {
            self.done = u8::try_from(value.min(100)).ok();
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "line" {
            self.line = u32::try_from(value).ok();
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "title" => self.title = Some(format!("{value:?}")),
            "file" => self.file = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let ours = meta.target().starts_with("expedite");
        let level = *meta.level();
        if !ours {
            if self.libraries && self.console.debug_enabled() && level <= TLevel::DEBUG {
                let mut f = Fields::default();
                event.record(&mut f);
                self.console
                    .debug(&format!("{}: {}{}", meta.target(), f.message, f.extra));
            }
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let message = format!("{}{}", f.message, f.extra);
        match level {
            TLevel::ERROR | TLevel::WARN => {
                let a = Annotation {
                    title: f.title,
                    file: f.file,
                    line: f.line,
                    message,
                    ..Annotation::default()
                };
                let l = if level == TLevel::ERROR {
                    Level::Error
                } else {
                    Level::Warning
                };
                self.console.annotate(l, &a);
            }
            TLevel::INFO if f.progress => self.console.progress_done(&message, f.done),
            TLevel::INFO => self.console.info(&message),
            _ => self.console.debug(&message),
        }
    }
}

/// Installs the console layer as the process's subscriber. Returns false if
/// one was already installed (in-process tests), which is harmless.
pub fn install(console: &Console, libraries: bool) -> bool {
    tracing_subscriber::registry()
        .with(ConsoleLayer::new(console.clone()).with_libraries(libraries))
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::console::{Style, tests::capture};
    use super::*;

    #[test]
    fn events_become_annotations_in_action_style() {
        let (console, out, _) = capture(Style::Action);
        let sub =
            tracing_subscriber::registry().with(ConsoleLayer::new(console).with_libraries(true));
        tracing::subscriber::with_default(sub, || {
            tracing::error!(
                title = "Gate failed",
                file = "a.trx",
                line = 3u64,
                "2 critical tests failed"
            );
            tracing::warn!("careful");
            tracing::info!("plain");
            tracing::debug!("detail");
            tracing::info!(target: "hyper::client", "noise");
        });
        let text = out.text();
        assert!(
            text.contains("::error title=Gate failed,file=a.trx,line=3::2 critical tests failed\n"),
            "{text}"
        );
        assert!(text.contains("::warning::careful\n"));
        assert!(text.contains("plain\n"));
        assert!(text.contains("::debug::detail\n"));
        // Dependency events appear only as debug lines, never as annotations.
        assert!(text.contains("::debug::hyper::client: noise\n"), "{text}");
        assert!(!text.contains("::warning::hyper"));
    }

    #[test]
    fn dependency_events_are_hidden_without_debug() {
        let (out, err) = (
            super::super::console::tests::Capture::default(),
            super::super::console::tests::Capture::default(),
        );
        let console = Console::with_sinks(
            Style::Action,
            false,
            super::super::console::Secrets::default(),
            Box::new(out.clone()),
            Box::new(err),
        );
        let sub = tracing_subscriber::registry().with(ConsoleLayer::new(console));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(target: "hyper::client", "noise");
            tracing::debug!("detail");
        });
        assert_eq!(out.text(), "");
    }

    #[test]
    fn dependency_events_need_the_second_v() {
        // -v: expedite's debug lines, not the libraries'.
        let (console, out, _) = capture(Style::Action);
        let sub = tracing_subscriber::registry().with(ConsoleLayer::new(console));
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(target: "hyper_util::client::legacy::pool", "pooling idle connection");
            tracing::debug!("detail");
        });
        let text = out.text();
        assert!(text.contains("::debug::detail\n"), "{text}");
        assert!(!text.contains("pool"), "{text}");
    }
}
