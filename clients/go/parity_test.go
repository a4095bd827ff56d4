package kodad

import (
	"context"
	"errors"
	"reflect"
	"testing"

	kodav1 "github.com/kodad/kodad/clients/go/gen/koda/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wrappers names the Client method that wraps each RPC of koda.v1.SessionService.
var wrappers = map[string]string{
	"GetServerInfo":     "ServerInfo",
	"ListModels":        "ListModels",
	"CreateSession":     "CreateSession",
	"GetSession":        "GetSession",
	"ListSessions":      "Sessions",
	"UpdateSession":     "UpdateSession",
	"DeleteSession":     "DeleteSession",
	"ForkSession":       "ForkSession",
	"ListMessages":      "Messages",
	"ListFileChanges":   "FileChanges",
	"RunTurn":           "RunTurn",
	"SubmitCommand":     "Submit",
	"CancelTurn":        "CancelTurn",
	"RewindSession":     "Rewind",
	"UnrewindSession":   "Unrewind",
	"GetTurnDiff":       "TurnDiff",
	"RemoveQueuedTurn":  "RemoveQueuedTurn",
	"WatchSession":      "Watch",
	"ListAgentProfiles": "AgentProfiles",
	"GetAgentProfile":   "AgentProfile",
	"CompactSession":    "Compact",
}

// Every RPC of the service (read from its descriptor) has a wrapper, so a new RPC without
// one fails here.
func TestEveryRPCHasAWrapper(t *testing.T) {
	methods := kodav1.File_koda_v1_session_service_proto.Services().ByName("SessionService").Methods()
	client := reflect.TypeOf(&Client{})
	seen := map[string]bool{}
	for i := range methods.Len() {
		rpc := string(methods.Get(i).Name())
		seen[rpc] = true
		wrapper, ok := wrappers[rpc]
		if !ok {
			t.Errorf("RPC %s has no wrapper", rpc)
			continue
		}
		if _, ok := client.MethodByName(wrapper); !ok {
			t.Errorf("RPC %s: Client has no method %s", rpc, wrapper)
		}
	}
	for rpc := range wrappers {
		if !seen[rpc] {
			t.Errorf("%s is not an RPC of the service", rpc)
		}
	}
}

func TestContextErrorsAreRecognisable(t *testing.T) {
	canceled := wrap(status.Error(codes.Canceled, "context canceled"))
	if !errors.Is(canceled, context.Canceled) || errors.Is(canceled, context.DeadlineExceeded) {
		t.Fatalf("errors.Is on %v", canceled)
	}
	late := wrap(status.Error(codes.DeadlineExceeded, "deadline exceeded"))
	if !errors.Is(late, context.DeadlineExceeded) {
		t.Fatalf("errors.Is on %v", late)
	}
	if errors.Unwrap(late) == nil || status.Code(errors.Unwrap(late)) != codes.DeadlineExceeded {
		t.Fatalf("Unwrap of %v", late)
	}
}
