use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = jira_bridge::cli::Cli::parse();
    match jira_bridge::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "jira-bridge stopped with an error");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
