package kodad

import (
	"errors"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorsCarryTheirStatusAndErrorInfo(t *testing.T) {
	st, err := status.New(codes.FailedPrecondition, "session s_1 is already running turn t_1").
		WithDetails(&errdetails.ErrorInfo{
			Reason:   "TURN_ALREADY_RUNNING",
			Domain:   "kodad",
			Metadata: map[string]string{"session_id": "s_1", "turn_id": "t_1"},
		})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := wrap(st.Err())
	var e *Error
	if !errors.As(wrapped, &e) {
		t.Fatalf("wrap gave %T, want *Error", wrapped)
	}
	if e.Reason != "TURN_ALREADY_RUNNING" || e.Metadata["turn_id"] != "t_1" {
		t.Fatalf("reason %q metadata %v", e.Reason, e.Metadata)
	}
	if status.Code(wrapped) != codes.FailedPrecondition || Code(wrapped) != codes.FailedPrecondition {
		t.Fatalf("status.Code %v, Code %v", status.Code(wrapped), Code(wrapped))
	}
	if s, ok := status.FromError(wrapped); !ok || s.Message() != st.Message() {
		t.Fatalf("status.FromError: %v %v", s, ok)
	}
	plain := wrap(status.Error(codes.Unavailable, "connection refused"))
	if !errors.As(plain, &e) || e.Reason != "" || len(e.Metadata) != 0 {
		t.Fatalf("a status without ErrorInfo: %+v", e)
	}
}
