//! spawn_sidecar against the real kodad: a port and a unix socket, the token, errors.
mod common;

use futures_util::StreamExt;
use kodad_client::pb::engine_event::Payload;
use kodad_client::{pb, spawn_sidecar, Client, ConnectOptions, Handlers, SidecarOptions};

fn command() -> Vec<String> {
    let python = std::env::var("KODAD_PYTHON")
        .unwrap_or_else(|_| common::repository().join(".venv/bin/python").display().to_string());
    vec![python, "-m".into(), "kodad".into()]
}

#[tokio::test(flavor = "multi_thread")]
async fn spawn_over_a_port_and_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["127.0.0.1:0".to_string(), format!("unix://{}", dir.path().join("kodad.sock").display())] {
        let data = tempfile::tempdir().unwrap();
        let options = SidecarOptions {
            command: Some(command()),
            listen,
            args: vec!["--data-dir".into(), data.path().display().to_string()],
            ..Default::default()
        };
        let sidecar = spawn_sidecar(options).await.unwrap();
        let workspace = tempfile::tempdir().unwrap();
        let session = sidecar
            .client
            .create_session(pb::Session {
                workspace: workspace.path().display().to_string(),
                ..Default::default()
            })
            .await
            .unwrap();
        let models = sidecar.client.list_models(None, &session.id).await.unwrap();
        assert_eq!(models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["scripted"]);
        let mut text = String::new();
        let mut events = sidecar.client.run_turn(&session.id, "hi", Handlers::default()).await.unwrap();
        while let Some(event) = events.next().await {
            if let Some(Payload::TextDelta(delta)) = event.unwrap().payload {
                text.push_str(&delta.text);
            }
        }
        assert_eq!(text, "You said: hi");
        let stranger = Client::connect_with(
            &sidecar.ready.address,
            ConnectOptions { token: Some("wrong".into()), tls: None },
        )
        .await
        .unwrap();
        assert_eq!(stranger.server_info().await.unwrap_err().code, tonic::Code::Unauthenticated);
        assert_eq!(sidecar.stop().await, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = SidecarOptions {
        command: Some(vec![dir.path().join("missing").display().to_string()]),
        ..Default::default()
    };
    let error = spawn_sidecar(missing).await.err().unwrap();
    assert!(error.0.starts_with("cannot start"), "{error}");
    let failing = SidecarOptions {
        command: Some(command()),
        args: vec!["--tls-cert".into(), "x.pem".into()],
        ..Default::default()
    };
    let error = spawn_sidecar(failing).await.err().unwrap();
    assert!(error.0.contains("exited with code 2"), "{error}");
    assert!(error.0.contains("--tls-cert and --tls-key"), "{error}");
}
