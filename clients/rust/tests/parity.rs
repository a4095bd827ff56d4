//! Every RPC of koda.v1.SessionService has a wrapper on `Client`, and errors keep their cause.
use std::collections::BTreeSet;

use kodad_client::Client;

/// The `Client` method wrapping each RPC; naming the method here makes the compiler check it.
macro_rules! wrappers {
    ($($rpc:literal => $method:ident),* $(,)?) => {{
        $(let _ = Client::$method;)*
        [$($rpc),*]
    }};
}

#[test]
fn every_rpc_has_a_wrapper() {
    let wrapped: BTreeSet<&str> = wrappers!(
        "GetServerInfo" => server_info, "ListModels" => list_models,
        "CreateSession" => create_session, "GetSession" => get_session,
        "ListSessions" => sessions, "UpdateSession" => update_session,
        "DeleteSession" => delete_session, "ForkSession" => fork_session,
        "ListMessages" => messages, "ListFileChanges" => file_changes,
        "RunTurn" => run_turn, "SubmitCommand" => submit, "CancelTurn" => cancel_turn,
        "RewindSession" => rewind, "UnrewindSession" => unrewind, "GetTurnDiff" => turn_diff,
        "RemoveQueuedTurn" => remove_queued_turn, "WatchSession" => watch,
        "ListAgentProfiles" => agent_profiles, "GetAgentProfile" => agent_profile,
        "CompactSession" => compact,
    )
    .into_iter()
    .collect();
    // The service's RPCs, from its proto (the crate carries no descriptor).
    let proto = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto/koda/v1/session_service.proto"
    ))
    .unwrap();
    let rpcs: BTreeSet<&str> = proto
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .map(|rest| rest.split('(').next().unwrap().trim())
        .collect();
    assert_eq!(rpcs, wrapped, "an RPC without a wrapper, or a stale one");
}

#[tokio::test]
async fn a_refused_connection_says_why_and_keeps_its_source() {
    let error = match Client::connect("127.0.0.1:9").await {
        Ok(_) => panic!("nothing serves on the discard port"),
        Err(error) => error,
    };
    assert_eq!(error.code, tonic::Code::Unavailable);
    assert!(error.client_side);
    assert!(error.message.to_lowercase().contains("refused"), "{}", error.message);
    assert!(std::error::Error::source(&error).is_some());
}
