//! The wrapper's own behaviour against a live kodad: errors, handlers, drop, the README example.
mod common;

use futures_util::StreamExt;
use kodad_client::pb::engine_event::Payload;
use kodad_client::{pb, ApprovalAnswer, Client, Handlers};

const WRITE_THEN_DONE: &str = r#"{"rounds":[[{"tool_call":{"name":"write_file","id":"w","arguments":{"path":"a.txt","content":"x"}}}],[{"text":"done"}]]}"#;

async fn scripted(client: &Client, workspace: &std::path::Path) -> pb::Session {
    let provider = pb::ProviderConfig {
        kind: pb::ProviderKind::Scripted.into(),
        script_json: WRITE_THEN_DONE.into(),
        ..Default::default()
    };
    let session = pb::Session {
        workspace: workspace.display().to_string(),
        provider: Some(provider),
        ..Default::default()
    };
    client.create_session(session).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_behaviour() {
    let server = common::start();
    let client = Client::connect(&server.address).await.unwrap();

    // Errors carry the gRPC code and the service's message.
    let error = client.get_session("s_missing").await.unwrap_err();
    assert_eq!(error.code, tonic::Code::NotFound);
    assert!(error.message.contains("s_missing"), "{error}");
    assert_eq!(error.reason, "SESSION_NOT_FOUND");
    assert_eq!(error.metadata.get("session_id").map(String::as_str), Some("s_missing"));
    let invalid = client.create_session(pb::Session::default()).await.unwrap_err();
    assert_eq!(invalid.code, tonic::Code::InvalidArgument);
    assert!(!invalid.client_side && std::error::Error::source(&invalid).is_some());

    // Watching a session with no events yet returns its stream at once (the headers come first).
    let quiet = tempfile::tempdir().unwrap();
    let empty = pb::Session { workspace: quiet.path().display().to_string(), ..Default::default() };
    let empty = client.create_session(empty).await.unwrap();
    let watching = tokio::time::timeout(std::time::Duration::from_secs(10), client.watch(&empty.id, 0));
    drop(watching.await.expect("watch waited for a first event").unwrap());

    // Sessions by label, then deleted.
    let workspace = tempfile::tempdir().unwrap();
    let labels = std::collections::HashMap::from([("suite".to_string(), "rust".to_string())]);
    let created = client
        .create_session(pb::Session {
            workspace: workspace.path().display().to_string(),
            labels: labels.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let listed: Vec<String> = client.sessions(labels).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![created.id.clone()]);
    client.delete_session(&created.id).await.unwrap();
    assert_eq!(client.get_session(&created.id).await.unwrap_err().code, tonic::Code::NotFound);

    // Without handlers an approval is rejected and nothing is written.
    let session = scripted(&client, workspace.path()).await;
    let events: Vec<_> =
        client.run_turn(&session.id, "write", Handlers::default()).await.unwrap().collect().await;
    let events: Vec<pb::EngineEvent> = events.into_iter().map(Result::unwrap).collect();
    let decision = events.iter().find_map(|e| match &e.payload {
        Some(Payload::ApprovalResolved(r)) => Some(r.decision()),
        _ => None,
    });
    assert_eq!(decision, Some(pb::Decision::Reject));
    assert!(matches!(events.last().unwrap().payload, Some(Payload::TurnEnded(_))));
    assert!(!workspace.path().join("a.txt").exists());

    // A handler approves.
    let handlers = Handlers::default()
        .on_approval(|_| Some(ApprovalAnswer { decision: pb::Decision::Approve, feedback: String::new() }));
    let approved = tempfile::tempdir().unwrap();
    let session = scripted(&client, approved.path()).await;
    let mut stream = client.run_turn(&session.id, "write", handlers).await.unwrap();
    while let Some(event) = stream.next().await {
        event.unwrap();
    }
    assert_eq!(std::fs::read_to_string(approved.path().join("a.txt")).unwrap(), "x");

    // Dropping a turn's stream mid-question cancels the turn; watch shows its end.
    let other = tempfile::tempdir().unwrap();
    let session = scripted(&client, other.path()).await;
    let mut turn = client.start_turn(&session.id, "write", false).await.unwrap();
    while !matches!(turn.next().await.unwrap().unwrap().payload, Some(Payload::ApprovalRequested(_))) {}
    drop(turn);
    let mut watch = client.watch(&session.id, 0).await.unwrap();
    loop {
        let event = watch.next().await.unwrap().unwrap();
        if let Some(Payload::TurnEnded(ended)) = event.payload {
            assert_eq!(ended.reason(), pb::TurnEndReason::Cancelled);
            break;
        }
    }
}

#[test]
fn the_readme_example_is_the_quickstart_program() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("```rust\n").unwrap() + 8;
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let program = std::fs::read_to_string(root.join("examples/quickstart.rs")).unwrap();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = line
            .replace("\"127.0.0.1:50051\"", "target")
            .replace("\"/path/to/repo\".into()", "workspace.clone()");
        assert!(program.contains(&line), "quickstart lacks: {line}");
    }
}

#[test]
fn the_readme_example_runs() {
    let server = common::start();
    // `cargo test` builds the examples next to the test binaries.
    let example =
        std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/quickstart");
    let workspace = tempfile::tempdir().unwrap();
    let out =
        std::process::Command::new(&example).arg(&server.address).arg(workspace.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "You said: hello from Rust");
}
