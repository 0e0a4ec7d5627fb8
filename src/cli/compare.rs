//! `normscope compare RUN... [--report FILE]`.

use std::path::PathBuf;

use clap::Args;
use normscope::output::{check_output, write_atomic, OutputKind};
use normscope::variants::compare::{render_table, summarize};
use normscope::variants::report::render_html;

use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders written by `finetune`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Write a self-contained HTML report with SVG plots.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Replace an existing report.
    #[arg(long)]
    pub force: bool,
}

pub fn run(common: &Common, args: CompareArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.report {
        check_output("report", path, OutputKind::File, args.force)?;
    }
    let runs = args
        .runs
        .iter()
        .map(|r| summarize(r))
        .collect::<normscope::Result<Vec<_>>>()?;
    if let Some(path) = &args.report {
        let command = super::command_line();
        write_atomic(path, render_html(&runs, &command)?.as_bytes(), args.force)?;
    }
    if common.json {
        return print_json(&serde_json::json!({ "runs": runs, "report": args.report }));
    }
    Ok(out::print(&render_table(&runs))?)
}
