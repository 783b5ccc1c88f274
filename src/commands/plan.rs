//! `plan`: validates the multi-service manifest (the validation itself
//! happens while the inputs are read, so a bad manifest fails like any bad
//! input, every problem on its own line), prints the stages, writes a
//! mermaid graph to the summary, and emits the stages and a
//! `strategy.matrix` for teams that prefer one job per service with
//! `needs:`.

use super::{CommandError, Ctx, Report};
use crate::config::PlanConfig;
use crate::report::md_cell;

/// Runs `plan`.
pub async fn run(ctx: &Ctx, config: &PlanConfig) -> Result<Report, CommandError> {
    let m = &config.manifest;
    let stages = m.stages();
    for (i, stage) in stages.iter().enumerate() {
        ctx.console
            .info(&format!("stage {}: {}", i + 1, stage.join(", ")));
    }
    let mut md = format!(
        "## 🗺️ Deploy plan — {}\n\n{} services in {} stages; a service starts only after every service it depends on is verified healthy in production.\n\n| stage | service | platform | depends on |\n|---|---|---|---|\n",
        md_cell(&config.path.to_string_lossy()),
        m.services.len(),
        stages.len()
    );
    for (i, stage) in stages.iter().enumerate() {
        for name in stage {
            let Some(s) = m.service(name) else { continue };
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                i + 1,
                md_cell(name),
                s.platform.name(),
                if s.depends_on.is_empty() {
                    "–".to_string()
                } else {
                    md_cell(&s.depends_on.join(", "))
                }
            ));
        }
    }
    md.push('\n');
    md.push_str(&m.mermaid());
    let stages_json = serde_json::to_string(&stages)
        .map_err(|e| CommandError::Failed(format!("cannot encode the stages: {e}")))?;
    let matrix = serde_json::to_string(&m.matrix())
        .map_err(|e| CommandError::Failed(format!("cannot encode the matrix: {e}")))?;
    Ok(Report {
        success: true,
        outputs: vec![("stages", stages_json), ("matrix", matrix)],
        summary: md,
        ..Report::default()
    })
}
