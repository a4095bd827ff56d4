//! Runs the shared scenarios (tests/conformance/*.json) against a live kodad.
mod common;

use std::collections::HashMap;
use std::path::Path;

use futures_util::StreamExt;
use kodad_client::pb::engine_command::Command;
use kodad_client::pb::engine_event::Payload;
use kodad_client::{event_kind, pb, Client, Error, Turn};
use serde_json::Value;

fn code(name: &str) -> tonic::Code {
    match name {
        "NOT_FOUND" => tonic::Code::NotFound,
        "FAILED_PRECONDITION" => tonic::Code::FailedPrecondition,
        "INVALID_ARGUMENT" => tonic::Code::InvalidArgument,
        "ALREADY_EXISTS" => tonic::Code::AlreadyExists,
        "OUT_OF_RANGE" => tonic::Code::OutOfRange,
        "CANCELLED" => tonic::Code::Cancelled,
        other => panic!("unknown code {other}"),
    }
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, Error>, want: &str) -> Error {
    let error = result.expect_err(&format!("expected {want}"));
    assert_eq!(error.code, code(want), "{error}");
    error
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

struct Runner {
    client: Client,
    session: pb::Session,
    workspace: tempfile::TempDir,
    turn: Option<Turn>,
    events: Vec<pb::EngineEvent>,
}

impl Runner {
    fn turn(&mut self) -> &mut Turn {
        self.turn.as_mut().expect("no turn started")
    }

    async fn read(&mut self) -> &'static str {
        let event = self.turn().next().await.unwrap().expect("the stream ended early");
        let kind = event_kind(&event);
        self.events.push(event);
        kind
    }

    fn last(&self, kind: &str) -> &pb::EngineEvent {
        self.events.iter().rev().find(|e| event_kind(e) == kind).unwrap_or_else(|| panic!("no {kind} event"))
    }

    async fn send(&mut self, step: &Value, command: Command) {
        if text(step, "via") == "submit" {
            let result = self.client.submit(&self.session.id, command).await;
            match step.get("expect_code").and_then(Value::as_str) {
                Some(want) => drop(expect_code(result, want)),
                None => drop(result.unwrap()),
            }
        } else {
            self.turn().send(command).unwrap();
        }
    }

    /// Runs one step; false ends the scenario (an expected error happened).
    async fn step(&mut self, s: &Value) -> bool {
        match text(s, "do").as_str() {
            "start" => {
                let id = s.get("session_id").and_then(Value::as_str).unwrap_or(&self.session.id).to_string();
                let schema = s.get("output_schema").map(|v| v.to_string()).unwrap_or_default();
                let start = pb::StartTurn {
                    session_id: id,
                    text: text(s, "text"),
                    output_schema_json: schema,
                    ..Default::default()
                };
                let started = self.client.start_turn_with(start).await;
                if let Some(want) = s.get("expect_code").and_then(Value::as_str) {
                    // The failure comes with the call or with its first read.
                    let result = match started {
                        Ok(mut turn) => turn.next().await.map(|_| ()),
                        Err(error) => Err(error),
                    };
                    expect_code(result, want);
                    return false;
                }
                self.turn = Some(started.unwrap());
            }
            "read_until" => while self.read().await != text(s, "kind") {},
            "decide" => {
                let Some(Payload::ApprovalRequested(request)) = &self.last("approval_requested").payload
                else {
                    unreachable!()
                };
                let decision = pb::Decision::from_str_name(&text(s, "decision")).unwrap();
                let command = Command::ApprovalDecision(pb::ApprovalDecision {
                    request_id: request.request_id.clone(),
                    decision: decision.into(),
                    feedback: text(s, "feedback"),
                });
                self.send(s, command).await;
            }
            "loop" => {
                let action = pb::LoopAction::from_str_name(&text(s, "action")).unwrap();
                let extra = s.get("extra_iterations").and_then(Value::as_i64).unwrap_or(0) as i32;
                let command = Command::LoopDecision(pb::LoopDecision {
                    action: action.into(),
                    extra_iterations: extra,
                });
                self.send(s, command).await;
            }
            "answer" => {
                let Some(Payload::UserQuestion(asked)) = &self.last("user_question").payload else {
                    unreachable!()
                };
                let command = Command::UserAnswer(pb::UserAnswer {
                    request_id: asked.request_id.clone(),
                    text: text(s, "text"),
                });
                self.send(s, command).await;
            }
            "run" => {
                let mut events = self
                    .client
                    .run_turn(&self.session.id, &text(s, "text"), Default::default())
                    .await
                    .unwrap();
                let (mut kept, mut left) = (Vec::new(), false);
                while let Some(event) = events.next().await {
                    let event = event.unwrap();
                    let kind = event_kind(&event);
                    kept.push(event);
                    if kind == text(s, "leave_after") {
                        left = true;
                        break; // leaving the loop (dropping the stream) cancels the turn
                    }
                }
                drop(events);
                if !left {
                    self.events.extend(kept);
                }
            }
            "cancel" => {
                if text(s, "via") == "cancel_turn" {
                    self.client.cancel_turn(&self.session.id).await.unwrap();
                } else {
                    self.turn().cancel().unwrap();
                }
            }
            "steer" => {
                if text(s, "via") == "submit" {
                    let command = Command::Steer(pb::Steer { text: text(s, "text"), ..Default::default() });
                    self.send(s, command).await;
                } else {
                    self.turn().steer(&text(s, "text")).unwrap();
                }
            }
            "start_second" => {
                let result = match self.client.start_turn(&self.session.id, &text(s, "text"), false).await {
                    Ok(mut second) => second.next().await.map(|_| ()),
                    Err(error) => Err(error),
                };
                let error = expect_code(result, &text(s, "expect_code"));
                if s.get("message_contains_turn_id") == Some(&Value::Bool(true)) {
                    let id = self.turn().id().to_string();
                    assert!(error.message.contains(&id), "{error} does not name {id}");
                }
            }
            "finish" => {
                while self.read().await != "turn_ended" {}
                assert!(
                    self.turn().next().await.unwrap().is_none(),
                    "the stream should close after turn_ended"
                );
            }
            "watch" => {
                let after = s.get("after_seq").and_then(Value::as_i64).unwrap_or(0);
                let want: Vec<_> = self.events.iter().filter(|e| e.seq > after).cloned().collect();
                let stream = self.client.watch(&self.session.id, after).await.unwrap();
                let got: Vec<_> = stream.take(want.len()).map(Result::unwrap).collect().await;
                assert_eq!(got, want);
            }
            other => panic!("unknown step {other}"),
        }
        true
    }

    async fn check(&self, expect: &Value) {
        let kinds: Vec<&str> = self.events.iter().map(event_kind).collect();
        for (i, e) in self.events.iter().enumerate() {
            assert_eq!(e.seq, self.events[0].seq + i as i64, "seqs are gap-free");
        }
        if let Some(want) = expect.get("kinds").and_then(Value::as_array) {
            let want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
            assert_eq!(kinds, want);
        }
        if let Some(want) = expect.get("kinds_include").and_then(Value::as_array) {
            let mut i = 0;
            for k in &kinds {
                if i < want.len() && want[i] == *k {
                    i += 1;
                }
            }
            assert_eq!(i, want.len(), "{kinds:?} lack {want:?}");
        }
        if let Some(want) = expect.get("subagent") {
            let tagged: Vec<&pb::EngineEvent> =
                self.events.iter().filter(|e| !e.subagent_session_id.is_empty()).collect();
            let children: std::collections::BTreeSet<&str> =
                tagged.iter().map(|e| e.subagent_session_id.as_str()).collect();
            assert_eq!(children.len(), 1, "sub-agent sessions {children:?}");
            assert!(!children.contains(self.session.id.as_str()));
            for e in &tagged {
                assert_eq!(e.parent_call_id, text(want, "parent_call_id"));
            }
            let tagged_kinds: Vec<String> = tagged.iter().map(|e| event_kind(e).to_string()).collect();
            let wanted: Vec<String> =
                want["kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
            assert_eq!(tagged_kinds, wanted);
        }
        if let Some(counts) = expect.get("count").and_then(Value::as_object) {
            for (k, n) in counts {
                assert_eq!(
                    kinds.iter().filter(|have| *have == k).count() as u64,
                    n.as_u64().unwrap(),
                    "{k} events"
                );
            }
        }
        if let Some(want) = expect.get("text").and_then(Value::as_str) {
            let got: String = self
                .events
                .iter()
                .filter_map(|e| match &e.payload {
                    Some(Payload::TextDelta(d)) => Some(d.text.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(got, want);
        }
        if let Some(want) = expect.get("turn_ended") {
            let Some(Payload::TurnEnded(ended)) = &self.last("turn_ended").payload else { unreachable!() };
            assert_eq!(ended.reason().as_str_name(), text(want, "reason"));
            let usage = ended.usage.unwrap_or_default();
            if let Some(n) = want.get("input_tokens").and_then(Value::as_i64) {
                assert_eq!(usage.input_tokens, n);
            }
            if let Some(n) = want.get("output_tokens").and_then(Value::as_i64) {
                assert_eq!(usage.output_tokens, n);
            }
        }
        if let Some(files) = expect.get("files").and_then(Value::as_object) {
            for (path, content) in files {
                let got = std::fs::read_to_string(self.workspace.path().join(path)).unwrap();
                assert_eq!(got, content.as_str().unwrap(), "{path}");
            }
        }
        let mut finished = HashMap::new();
        let mut streamed: HashMap<String, u64> = HashMap::new();
        for e in &self.events {
            match &e.payload {
                Some(Payload::ToolCallFinished(f)) => drop(finished.insert(f.call_id.clone(), f.clone())),
                Some(Payload::ToolCallOutput(o)) => {
                    *streamed.entry(o.call_id.clone()).or_default() += o.chunk.chars().count() as u64
                }
                _ => {}
            }
        }
        if let Some(results) = expect.get("tool_results").and_then(Value::as_object) {
            for (id, want) in results {
                let got = finished.get(id).unwrap_or_else(|| panic!("no result for call {id}"));
                if let Some(v) = want.get("is_error").and_then(Value::as_bool) {
                    assert_eq!(
                        got.is_error,
                        v,
                        "{id} is_error: {}",
                        &got.output[got.output.len().saturating_sub(300)..]
                    );
                }
                if let Some(v) = want.get("output").and_then(Value::as_str) {
                    assert_eq!(got.output, v);
                }
                if let Some(v) = want.get("truncated").and_then(Value::as_bool) {
                    assert_eq!(got.truncated, v, "{id} truncated");
                }
                if let Some(n) = want.get("output_length").and_then(Value::as_u64) {
                    assert_eq!(got.output.chars().count() as u64, n, "{id} output length");
                }
            }
        }
        if let Some(lengths) = expect.get("streamed_output").and_then(Value::as_object) {
            for (id, n) in lengths {
                assert_eq!(streamed.get(id).copied().unwrap_or(0), n.as_u64().unwrap(), "{id} streamed");
            }
        }
        if let Some(want) = expect.get("approval") {
            let Some(Payload::ApprovalRequested(asked)) = &self.last("approval_requested").payload else {
                unreachable!()
            };
            if let Some(v) = want.get("summary").and_then(Value::as_str) {
                assert_eq!(asked.summary, v);
            }
            if let Some(v) = want.get("tool_name").and_then(Value::as_str) {
                assert_eq!(asked.tool_name, v);
            }
        }
        if let Some(want) = expect.get("approval_rules").and_then(Value::as_array) {
            let session = self.client.get_session(&self.session.id).await.unwrap();
            let want: Vec<pb::ApprovalRule> = want
                .iter()
                .map(|r| pb::ApprovalRule {
                    tool_name: text(r, "tool_name"),
                    command_prefix: text(r, "command_prefix"),
                    reject: r.get("reject").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect();
            assert_eq!(session.approval_rules, want);
        }
        if let Some(want) = expect.get("output") {
            let Some(Payload::TurnEnded(ended)) = &self.last("turn_ended").payload else { unreachable!() };
            assert_eq!(kodad_client::output(ended).unwrap().as_ref(), Some(want));
        }
        if let Some(want) = expect.get("history_roles").and_then(Value::as_array) {
            let roles: Vec<String> = self
                .client
                .messages(&self.session.id)
                .await
                .unwrap()
                .iter()
                .map(|m| m.role().as_str_name().to_string())
                .collect();
            let want: Vec<String> = want.iter().map(|r| r.as_str().unwrap().to_string()).collect();
            assert_eq!(roles, want);
        }
    }
}

async fn run_scenario(client: &Client, path: &Path) {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let settings = &scenario["session"];
    let workspace = tempfile::tempdir().unwrap();
    if let Some(files) = settings.get("files").and_then(Value::as_object) {
        for (path, content) in files {
            let full = workspace.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content.as_str().unwrap()).unwrap();
        }
    }
    let mode = settings.get("approval_mode").and_then(Value::as_str).unwrap_or("APPROVAL_MODE_UNSPECIFIED");
    let mut session = pb::Session {
        workspace: workspace.path().display().to_string(),
        approval_mode: pb::ApprovalMode::from_str_name(mode).unwrap().into(),
        loop_cap: settings.get("loop_cap").and_then(Value::as_i64).unwrap_or(0) as i32,
        ..Default::default()
    };
    if let Some(script) = settings.get("script") {
        session.provider = Some(pb::ProviderConfig {
            kind: pb::ProviderKind::Scripted.into(),
            script_json: script.to_string(),
            ..Default::default()
        });
    }
    let session = client.create_session(session).await.unwrap();
    let mut runner = Runner { client: client.clone(), session, workspace, turn: None, events: Vec::new() };
    for step in scenario["steps"].as_array().unwrap() {
        if !runner.step(step).await {
            return;
        }
    }
    runner.check(&scenario["expect"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    let server = common::start();
    let client = Client::connect(&server.address).await.unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(common::repository().join("tests/conformance"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scenarios found");
    for path in &paths {
        eprintln!("scenario {}", path.file_stem().unwrap().to_string_lossy());
        run_scenario(&client, path).await;
    }
}
