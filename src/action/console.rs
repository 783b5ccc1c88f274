//! The one place that writes what people see: log lines, annotations,
//! groups, masks.
//!
//! Three styles share one API. **Action** style writes workflow commands to
//! stdout (one stream, so groups and annotations keep their order in the run
//! log). **Pipelines** style does the same with Azure Pipelines' logging
//! commands ([`super::vso`]), and makes every other line inert: the agent
//! acts on `##vso[` anywhere in a line. **CLI** style writes readable text
//! to stderr and leaves stdout for data. Every line passes through [`Secrets::redact`] first, so a secret that
//! slipped into an error message from a server is still never printed; and
//! any plain line that the runner could read as a command (it starts with
//! `::`) is wrapped in a `::stop-commands::` block with a random token.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};

use super::escape::{Annotation, Level, command};
use super::vso;

/// Known secret values. Cloning shares the registry.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the values themselves.
        let n = self.values.read().map(|v| v.len()).unwrap_or(0);
        write!(f, "Secrets({n} registered)")
    }
}

impl Secrets {
    /// Registers a secret (and, as the runner does, each of its lines).
    /// Returns the parts that were new, so the caller can mask exactly those.
    pub fn register(&self, secret: &str) -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        let trimmed = secret.trim();
        if !trimmed.is_empty() {
            parts.push(trimmed.to_string());
        }
        for line in secret.lines() {
            let line = line.trim();
            if !line.is_empty() && !parts.iter().any(|p| p == line) {
                parts.push(line.to_string());
            }
        }
        let Ok(mut values) = self.values.write() else {
            return Vec::new();
        };
        let mut added = Vec::new();
        for p in parts {
            if !values.contains(&p) {
                values.push(p.clone());
                added.push(p);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        added
    }

    /// Replaces every registered secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let Ok(values) = self.values.read() else {
            return "***".to_string();
        };
        let mut out = text.to_string();
        for v in values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// True when `text` contains a registered secret.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.values
            .read()
            .map(|v| v.iter().any(|s| text.contains(s.as_str())))
            .unwrap_or(true)
    }
}

/// How output is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Inside a GitHub Actions job: workflow commands on stdout.
    Action,
    /// A script step of an Azure Pipelines job (`TF_BUILD=True`): logging
    /// commands on stdout.
    Pipelines,
    /// A person's terminal: readable text on stderr, data on stdout.
    Cli,
}

/// The runner shows at most this many annotations of each level per step and
/// drops the rest silently; past it we print plain lines instead, so nothing
/// is lost without a trace.
pub const ANNOTATION_LIMIT_PER_LEVEL: usize = 10;

type Sink = Box<dyn Write + Send>;

/// Writes everything a person sees.
#[derive(Clone)]
pub struct Console {
    inner: Arc<ConsoleInner>,
}

struct ConsoleInner {
    style: Style,
    debug: bool,
    secrets: Secrets,
    out: Mutex<Sink>,
    err: Mutex<Sink>,
    annotations: Mutex<HashMap<Level, usize>>,
    /// Progress as one status line rewritten in place (a terminal that
    /// can: stderr a TTY, no `NO_COLOR`, not `TERM=dumb`).
    status_line: std::sync::atomic::AtomicBool,
    /// A status line is on screen (the next log line clears it first).
    status_shown: std::sync::atomic::AtomicBool,
    /// When the last progress line was printed (plain lines: at most one
    /// every [`PROGRESS_EVERY`]).
    last_progress: Mutex<Option<std::time::Instant>>,
    /// When the step's progress was last set (Pipelines style).
    last_setprogress: Mutex<Option<std::time::Instant>>,
}

/// How often progress becomes a log line where it cannot be a status line
/// (a job's log, a pipe): often enough to see it move, rarely enough to
/// keep the log readable.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("style", &self.inner.style)
            .finish()
    }
}

impl Console {
    /// A console on the process's stdout and stderr.
    pub fn stdio(style: Style, debug: bool, secrets: Secrets) -> Self {
        Self::with_sinks(
            style,
            debug,
            secrets,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
    }

    /// A console on the given sinks (tests capture with these).
    pub fn with_sinks(style: Style, debug: bool, secrets: Secrets, out: Sink, err: Sink) -> Self {
        Console {
            inner: Arc::new(ConsoleInner {
                style,
                debug,
                secrets,
                out: Mutex::new(out),
                err: Mutex::new(err),
                annotations: Mutex::new(HashMap::new()),
                status_line: std::sync::atomic::AtomicBool::new(false),
                status_shown: std::sync::atomic::AtomicBool::new(false),
                last_progress: Mutex::new(None),
                last_setprogress: Mutex::new(None),
            }),
        }
    }

    /// Shows progress as one status line rewritten in place (call it only
    /// when stderr is a terminal that can: see `app.rs`).
    pub fn use_status_line(&self, on: bool) {
        self.inner
            .status_line
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Progress during a long wait (a canary step, a verify window): on a
    /// terminal, one status line rewritten in place; elsewhere (a job's log,
    /// a pipe, `NO_COLOR`), a plain line at most every [`PROGRESS_EVERY`].
    pub fn progress(&self, text: &str) {
        self.progress_done(text, None);
    }

    /// [`Console::progress`] that knows how far the wait is (`done`, in
    /// percent): in a pipeline that also moves the step's progress
    /// (`##vso[task.setprogress]`), at most every 2 s.
    pub fn progress_done(&self, text: &str, done: Option<u8>) {
        use std::sync::atomic::Ordering::Relaxed;
        let text = self.inner.secrets.redact(text);
        if self.inner.style == Style::Pipelines
            && let Some(done) = done
            && let Ok(mut last) = self.inner.last_setprogress.lock()
        {
            let now = std::time::Instant::now();
            if last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(2)) {
                *last = Some(now);
                self.write_log(&format!(
                    "{}\n",
                    vso::command(
                        "task.setprogress",
                        &[("value", done.min(100).to_string())],
                        text.lines().next().unwrap_or_default(),
                    )
                ));
            }
        }
        if self.inner.style == Style::Cli && self.inner.status_line.load(Relaxed) {
            // Carriage return and erase-line: the line is rewritten, never
            // scrolled; no colour is involved.
            let line: String = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            if let Ok(mut w) = self.inner.err.lock() {
                let _ = write!(w, "\r\x1b[2K{line}");
                let _ = w.flush();
            }
            self.inner.status_shown.store(true, Relaxed);
            return;
        }
        let now = std::time::Instant::now();
        if let Ok(mut last) = self.inner.last_progress.lock() {
            if last.is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY) {
                return;
            }
            *last = Some(now);
        }
        self.info(&text);
    }

    /// The presentation style.
    pub fn style(&self) -> Style {
        self.inner.style
    }

    /// The secret registry behind this console.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// Whether debug lines are shown.
    pub fn debug_enabled(&self) -> bool {
        self.inner.debug
    }

    fn write_log(&self, text: &str) {
        // Log text goes to stdout in action style (one ordered stream for
        // the runner) and to stderr on a terminal (stdout is for data).
        let sink = match self.inner.style {
            Style::Action | Style::Pipelines => &self.inner.out,
            Style::Cli => &self.inner.err,
        };
        if let Ok(mut w) = sink.lock() {
            // A status line on screen is cleared before a log line.
            if self
                .inner
                .status_shown
                .swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                let _ = w.write_all(b"\r\x1b[2K");
            }
            // A closed pipe must not crash an incident tool; drop the line.
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
    }

    /// Registers a secret and, in action style, tells the runner to mask it
    /// for the rest of the job. Call it the moment a secret exists.
    pub fn add_mask(&self, secret: &str) {
        let added = self.inner.secrets.register(secret);
        match self.inner.style {
            Style::Action => {
                for part in added {
                    // This line is the one place a secret is written raw:
                    // the runner consumes it and never shows it.
                    self.write_log(&format!("{}\n", command("add-mask", &[], &part)));
                }
            }
            Style::Pipelines => {
                for part in added {
                    // `task.setsecret` only registers the value for masking;
                    // the agent consumes the line and never shows it. Not a
                    // secret *variable* (`setvariable …;issecret=true`): that
                    // would hand every later step of the job the value — an
                    // ARM token among them — as `$(name)` and `SECRET_*`.
                    self.write_log(&format!("{}\n", vso::command("task.setsecret", &[], &part)));
                }
            }
            Style::Cli => {}
        }
    }

    /// A plain informational line (or several).
    pub fn info(&self, text: &str) {
        let text = self.inner.secrets.redact(text);
        match self.inner.style {
            Style::Action if looks_like_command(&text) => self.untrusted_block(&text),
            Style::Pipelines => self.write_log(&format!("{}\n", vso::inert(&text))),
            _ => self.write_log(&format!("{text}\n")),
        }
    }

    /// A debug line, shown only when debugging is on.
    pub fn debug(&self, text: &str) {
        if !self.inner.debug {
            return;
        }
        let text = self.inner.secrets.redact(text);
        match self.inner.style {
            Style::Action => self.write_log(&format!("{}\n", command("debug", &[], &text))),
            Style::Pipelines => {
                for line in vso::inert(&text).lines() {
                    self.write_log(&format!("##[debug]{line}\n"));
                }
            }
            Style::Cli => self.write_log(&format!("debug: {text}\n")),
        }
    }

    /// Prints text that came from outside (commit messages, branch names, a
    /// rollback reason) so that nothing in it is read as a command.
    pub fn untrusted(&self, label: &str, text: &str) {
        let text = self.inner.secrets.redact(text);
        match self.inner.style {
            Style::Action => self.untrusted_block(&format!("{label}: {text}")),
            Style::Pipelines => {
                self.write_log(&format!("{}\n", vso::inert(&format!("{label}: {text}"))))
            }
            Style::Cli => self.write_log(&format!("{label}: {text}\n")),
        }
    }

    fn untrusted_block(&self, text: &str) {
        // A fresh random token per block: the runner resumes command
        // processing only at `::<token>::`, which the text cannot guess.
        let token = format!("expedite-{}", uuid::Uuid::new_v4().simple());
        let mut block = String::with_capacity(text.len() + 96);
        block.push_str(&command("stop-commands", &[], &token));
        block.push('\n');
        block.push_str(text);
        if !text.ends_with('\n') {
            block.push('\n');
        }
        block.push_str(&format!("::{token}::\n"));
        self.write_log(&block);
    }

    /// An annotation. Past the runner's per-level limit it becomes a plain
    /// line (the caller also lists everything in the job summary).
    pub fn annotate(&self, level: Level, annotation: &Annotation) {
        let mut a = annotation.clone();
        a.message = self.inner.secrets.redact(&a.message);
        a.title = a.title.map(|t| self.inner.secrets.redact(&t));
        match self.inner.style {
            Style::Action => {
                let n = self.bump(level);
                if n <= ANNOTATION_LIMIT_PER_LEVEL {
                    self.write_log(&format!("{}\n", a.render(level)));
                } else {
                    self.info(&format!("{}: {}", level.command(), plain(&a)));
                }
            }
            Style::Pipelines => {
                let n = self.bump(level);
                let kind = match level {
                    Level::Error => Some("error"),
                    Level::Warning => Some("warning"),
                    Level::Notice => None,
                };
                match kind {
                    Some(kind) if n <= ANNOTATION_LIMIT_PER_LEVEL => {
                        let mut props = vec![("type", kind.to_string())];
                        if let Some(f) = &a.file {
                            props.push(("sourcepath", f.clone()));
                            if let Some(l) = a.line {
                                props.push(("linenumber", l.to_string()));
                            }
                        }
                        // No title in a pipeline's issue: it leads the message.
                        // Inert too: the agent writes the issue back into the
                        // log as `##[error]…` with its line breaks decoded.
                        let message = vso::inert(&match &a.title {
                            Some(t) => format!("{t}: {}", a.message),
                            None => a.message.clone(),
                        });
                        self.write_log(&format!(
                            "{}\n",
                            vso::command("task.logissue", &props, &message)
                        ));
                    }
                    _ => self.info(&format!("{}: {}", level.command(), plain(&a))),
                }
            }
            Style::Cli => self.write_log(&format!("{}: {}\n", level.command(), plain(&a))),
        }
    }

    fn bump(&self, level: Level) -> usize {
        let Ok(mut counts) = self.inner.annotations.lock() else {
            return usize::MAX;
        };
        let n = counts.entry(level).or_insert(0);
        *n += 1;
        *n
    }

    /// How many more annotations of `level` the runner will show.
    pub fn annotations_left(&self, level: Level) -> usize {
        let used = self
            .inner
            .annotations
            .lock()
            .map(|c| *c.get(&level).unwrap_or(&0))
            .unwrap_or(0);
        ANNOTATION_LIMIT_PER_LEVEL.saturating_sub(used)
    }

    /// Opens a collapsible section; it closes when the guard drops.
    pub fn group(&self, title: &str) -> Group {
        let title = self.inner.secrets.redact(title);
        match self.inner.style {
            Style::Action => self.write_log(&format!("{}\n", command("group", &[], &title))),
            Style::Pipelines => {
                let title = vso::inert(&title).replace('\n', " ");
                self.write_log(&format!("##[group]{title}\n"));
            }
            Style::Cli => self.write_log(&format!("── {title}\n")),
        }
        Group {
            console: self.clone(),
        }
    }

    /// Writes one of expedite's own Azure Pipelines logging commands, built
    /// by [`vso::command`] (already escaped; never untrusted text as such).
    pub fn vso(&self, line: &str) {
        let line = self.inner.secrets.redact(line);
        self.write_log(&format!("{}\n", line.replace(['\r', '\n'], " ")));
    }

    /// Writes data (not log text) to stdout: what a script reads.
    pub fn data(&self, text: &str) {
        let mut text = self.inner.secrets.redact(text);
        if self.inner.style == Style::Pipelines {
            text = vso::inert(&text);
        }
        if let Ok(mut w) = self.inner.out.lock() {
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
    }
}

/// Closes a `::group::` when dropped.
#[must_use = "the group closes when this is dropped"]
pub struct Group {
    console: Console,
}

impl Drop for Group {
    fn drop(&mut self) {
        match self.console.inner.style {
            Style::Action => self.console.write_log("::endgroup::\n"),
            Style::Pipelines => self.console.write_log("##[endgroup]\n"),
            Style::Cli => {}
        }
    }
}

fn plain(a: &Annotation) -> String {
    let mut s = String::new();
    if let Some(t) = &a.title {
        s.push_str(t);
        s.push_str(": ");
    }
    s.push_str(&a.message);
    if let Some(f) = &a.file {
        s.push_str(" (");
        s.push_str(f);
        if let Some(l) = a.line {
            s.push_str(&format!(":{l}"));
        }
        s.push(')');
    }
    s
}

/// True when some line of `text` would be parsed by the runner as a command.
pub fn looks_like_command(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("::"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sink whose bytes a test can read back.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
        }
    }

    pub(crate) fn capture(style: Style) -> (Console, Capture, Capture) {
        let (out, err) = (Capture::default(), Capture::default());
        let c = Console::with_sinks(
            style,
            true,
            Secrets::default(),
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        (c, out, err)
    }

    #[test]
    fn secrets_are_redacted_everywhere_but_the_mask_line() {
        let (c, out, _) = capture(Style::Action);
        c.add_mask("s3cr3t-value");
        c.info("token is s3cr3t-value here");
        c.annotate(
            Level::Error,
            &Annotation::message("failed with s3cr3t-value"),
        );
        let text = out.text();
        let leaking: Vec<_> = text
            .lines()
            .filter(|l| l.contains("s3cr3t-value") && !l.starts_with("::add-mask::"))
            .collect();
        assert!(leaking.is_empty(), "{text}");
        assert!(text.contains("::add-mask::s3cr3t-value\n"));
        assert!(text.contains("token is *** here"));
    }

    #[test]
    fn multi_line_secrets_mask_each_line() {
        let s = Secrets::default();
        let added = s.register("-----BEGIN KEY-----\nabc123\n-----END KEY-----");
        assert!(added.iter().any(|p| p == "abc123"));
        assert_eq!(s.redact("x abc123 y"), "x *** y");
    }

    #[test]
    fn command_looking_text_is_fenced() {
        let (c, out, _) = capture(Style::Action);
        c.info("commit message:\n::set-output name=x::1");
        let text = out.text();
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].starts_with("::stop-commands::expedite-"), "{text}");
        let token = lines[0].trim_start_matches("::stop-commands::");
        assert_eq!(lines.last().copied(), Some(format!("::{token}::").as_str()));
    }

    #[test]
    fn untrusted_is_always_fenced_in_action_style() {
        let (c, out, _) = capture(Style::Action);
        c.untrusted("reason", "$(touch x)");
        assert!(out.text().starts_with("::stop-commands::"));
    }

    #[test]
    fn annotations_past_the_limit_become_lines() {
        let (c, out, _) = capture(Style::Action);
        for i in 0..12 {
            c.annotate(Level::Error, &Annotation::message(format!("e{i}")));
        }
        let text = out.text();
        assert_eq!(text.matches("::error::").count(), 10);
        assert!(text.contains("error: e11"));
        assert_eq!(c.annotations_left(Level::Error), 0);
    }

    #[test]
    fn pipelines_style_speaks_the_agents_commands_and_nothing_else() {
        let (c, out, err) = capture(Style::Pipelines);
        c.add_mask("s3cr3t");
        {
            let _g = c.group("deploy ##vso[task.setvariable variable=x]1");
            c.info("line with ##vso[task.complete result=Failed] and s3cr3t");
            c.debug("##[error]not an error");
        }
        c.annotate(
            Level::Warning,
            &Annotation::message("careful").with_title("T"),
        );
        let text = out.text();
        assert_eq!(err.text(), "", "one ordered stream");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "##vso[task.setsecret]s3cr3t");
        assert!(
            lines[1].starts_with("##[group]deploy ##\u{2060}vso["),
            "{text}"
        );
        assert!(
            !lines[2].contains("##vso[") && lines[2].ends_with("and ***"),
            "{text}"
        );
        assert_eq!(lines[3], "##[debug]#\u{2060}#[error]not an error");
        assert_eq!(lines[4], "##[endgroup]");
        assert_eq!(lines[5], "##vso[task.logissue type=warning;]T: careful");
    }

    #[test]
    fn pipelines_progress_moves_the_steps_bar_at_most_every_two_seconds() {
        let (c, out, _) = capture(Style::Pipelines);
        c.progress_done("canary 10 %: 30 s of 300 s ##vso[x]", Some(10));
        c.progress_done("canary 10 %: 31 s of 300 s", Some(11));
        c.progress_done("no figure", None);
        let text = out.text();
        let bars: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("##vso[task.setprogress"))
            .collect();
        assert_eq!(
            bars,
            ["##vso[task.setprogress value=10;]canary 10 %AZP25: 30 s of 300 s ##vso[x]"],
            "{text}"
        );
        // The plain line (one per 15 s) is inert as always.
        assert!(
            text.contains("canary 10 %: 30 s of 300 s ##\u{2060}vso[x]"),
            "{text}"
        );
    }

    #[test]
    fn cli_style_writes_logs_to_stderr() {
        let (c, out, err) = capture(Style::Cli);
        c.info("hello");
        c.data("x=1\n");
        assert_eq!(err.text(), "hello\n");
        assert_eq!(out.text(), "x=1\n");
    }
}
