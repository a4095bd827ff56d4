//! Quickstart, as in the README. Usage: quickstart HOST:PORT WORKSPACE
use futures_util::StreamExt;
use kodad_client::{pb, ApprovalAnswer, Client, Handlers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (target, workspace) = (&args[1], &args[2]);
    let client = Client::connect(target).await?;
    let session =
        client.create_session(pb::Session { workspace: workspace.clone(), ..Default::default() }).await?;
    let handlers = Handlers::default().on_approval(|_request| {
        Some(ApprovalAnswer { decision: pb::Decision::Approve, feedback: String::new() })
    });
    let mut events = client.run_turn(&session.id, "hello from Rust", handlers).await?;
    while let Some(event) = events.next().await {
        if let Some(pb::engine_event::Payload::TextDelta(delta)) = event?.payload {
            print!("{}", delta.text);
        }
    }
    println!();
    Ok(())
}
