// Package kodad is the Go client of kodad, a coding-agent engine served over gRPC.
//
//	client, err := kodad.Dial("127.0.0.1:50051")
//	session, err := client.CreateSession(ctx, &kodav1.Session{Workspace: "/path/to/repo"})
//	for event, err := range client.RunTurn(ctx, session.Id, "add a README", kodad.Handlers{}) { ... }
//
// Approval and loop-cap questions go to Handlers (default: reject / stop). RPC failures are
// *Error values carrying the gRPC status code.
package kodad

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	kodav1 "github.com/kodad/kodad/clients/go/gen/koda/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Error is a failed RPC: its gRPC status code, the service's message and the status's
// google.rpc.ErrorInfo. status.Code(err) and status.FromError(err) work on it.
type Error struct {
	Code    codes.Code
	Message string
	// Reason is the ErrorInfo's reason, e.g. "TURN_ALREADY_RUNNING" (the proto's
	// SessionService comment lists them); empty when the failure did not come from kodad.
	Reason string
	// Metadata is the ErrorInfo's metadata, e.g. "turn_id" for TURN_ALREADY_RUNNING.
	Metadata map[string]string
	status   *status.Status
	cause    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// GRPCStatus is the status the RPC failed with.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Unwrap is the error gRPC returned.
func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, context.Canceled) and errors.Is(err, context.DeadlineExceeded)
// true for a call that failed because its context ended.
func (e *Error) Is(target error) bool {
	return (target == context.Canceled && e.Code == codes.Canceled) ||
		(target == context.DeadlineExceeded && e.Code == codes.DeadlineExceeded)
}

// wrap turns a gRPC status error into *Error; other errors pass through.
func wrap(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	if s, ok := status.FromError(err); ok {
		e := &Error{Code: s.Code(), Message: s.Message(), Metadata: map[string]string{}, status: s, cause: err}
		for _, detail := range s.Details() {
			if info, ok := detail.(*errdetails.ErrorInfo); ok {
				e.Reason = info.GetReason()
				for k, v := range info.GetMetadata() {
					e.Metadata[k] = v
				}
			}
		}
		return e
	}
	return err
}

// Code is the gRPC code of err (codes.Unknown when it is not an RPC error).
func Code(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codes.Unknown
}

// Option configures Dial.
type Option func(*options)

type options struct {
	token string
	tls   *tls.Config
}

// WithToken sends a bearer token with every call.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects with TLS (pass a config with certificates for mutual TLS).
func WithTLS(config *tls.Config) Option { return func(o *options) { o.tls = config } }

// Client is a connection to a kodad service. Close it when done.
type Client struct {
	conn    *grpc.ClientConn
	token   string
	sidecar *sidecar
	// Raw is the generated stub, for anything the wrapper does not cover.
	Raw kodav1.SessionServiceClient
}

// Dial connects to a kodad service at target ("host:port").
func Dial(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, token: o.token, Raw: kodav1.NewSessionServiceClient(conn)}, nil
}

// Close closes the connection (and stops the kodad it spawned, if any).
func (c *Client) Close() error {
	err := c.conn.Close()
	if c.sidecar != nil {
		c.sidecar.stop()
	}
	return err
}

func (c *Client) ctx(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// ServerInfo describes the service.
func (c *Client) ServerInfo(ctx context.Context) (*kodav1.GetServerInfoResponse, error) {
	r, err := c.Raw.GetServerInfo(c.ctx(ctx), &kodav1.GetServerInfoRequest{})
	return r, wrap(err)
}

// ListModels lists the models a provider serves: provider's, or with nil the provider of
// sessionID, or with neither the service's default provider.
func (c *Client) ListModels(ctx context.Context, provider *kodav1.ProviderConfig, sessionID string) ([]*kodav1.Model, error) {
	r, err := c.Raw.ListModels(c.ctx(ctx), &kodav1.ListModelsRequest{Provider: provider, SessionId: sessionID})
	return r.GetModels(), wrap(err)
}

// CreateSession creates a session; session.Workspace is required.
func (c *Client) CreateSession(ctx context.Context, session *kodav1.Session) (*kodav1.Session, error) {
	r, err := c.Raw.CreateSession(c.ctx(ctx), &kodav1.CreateSessionRequest{Session: session})
	return r.GetSession(), wrap(err)
}

// GetSession returns one session.
func (c *Client) GetSession(ctx context.Context, id string) (*kodav1.Session, error) {
	r, err := c.Raw.GetSession(c.ctx(ctx), &kodav1.GetSessionRequest{SessionId: id})
	return r.GetSession(), wrap(err)
}

// Sessions iterates over every session carrying labels (all when nil), newest first.
func (c *Client) Sessions(ctx context.Context, labels map[string]string) iter.Seq2[*kodav1.Session, error] {
	return func(yield func(*kodav1.Session, error) bool) {
		token := ""
		for {
			page, err := c.Raw.ListSessions(c.ctx(ctx), &kodav1.ListSessionsRequest{PageToken: token, Labels: labels})
			if err != nil {
				yield(nil, wrap(err))
				return
			}
			for _, s := range page.Sessions {
				if !yield(s, nil) {
					return
				}
			}
			if token = page.NextPageToken; token == "" {
				return
			}
		}
	}
}

// UpdateSession changes the named fields of session (which carries its id).
func (c *Client) UpdateSession(ctx context.Context, session *kodav1.Session, fields ...string) (*kodav1.Session, error) {
	r, err := c.Raw.UpdateSession(c.ctx(ctx), &kodav1.UpdateSessionRequest{
		Session: session, UpdateMask: &fieldmaskpb.FieldMask{Paths: fields},
	})
	return r.GetSession(), wrap(err)
}

// DeleteSession deletes a session and everything of it.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	_, err := c.Raw.DeleteSession(c.ctx(ctx), &kodav1.DeleteSessionRequest{SessionId: id})
	return wrap(err)
}

// ForkSession copies a session with its history.
func (c *Client) ForkSession(ctx context.Context, id, title string) (*kodav1.Session, error) {
	r, err := c.Raw.ForkSession(c.ctx(ctx), &kodav1.ForkSessionRequest{SessionId: id, Title: title})
	return r.GetSession(), wrap(err)
}

// Messages returns the whole history, oldest first.
func (c *Client) Messages(ctx context.Context, id string) ([]*kodav1.Message, error) {
	var out []*kodav1.Message
	token := ""
	for {
		page, err := c.Raw.ListMessages(c.ctx(ctx), &kodav1.ListMessagesRequest{SessionId: id, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, page.Messages...)
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// Submit sends a command to the running turn of a session, from any client.
func (c *Client) Submit(ctx context.Context, sessionID string, command *kodav1.EngineCommand) (string, error) {
	r, err := c.Raw.SubmitCommand(c.ctx(ctx), &kodav1.SubmitCommandRequest{SessionId: sessionID, Command: command})
	return r.GetTurnId(), wrap(err)
}

// CancelTurn cancels the running turn of a session.
func (c *Client) CancelTurn(ctx context.Context, sessionID string) (string, error) {
	r, err := c.Raw.CancelTurn(c.ctx(ctx), &kodav1.CancelTurnRequest{SessionId: sessionID})
	return r.GetTurnId(), wrap(err)
}

// CancelTurnAndQueue cancels the running turn and empties the session's queue of turns.
func (c *Client) CancelTurnAndQueue(ctx context.Context, sessionID string) (string, error) {
	r, err := c.Raw.CancelTurn(c.ctx(ctx), &kodav1.CancelTurnRequest{SessionId: sessionID, ClearQueue: true})
	return r.GetTurnId(), wrap(err)
}

// RemoveQueuedTurn takes a queued turn off the session's queue (NotFound once it started).
func (c *Client) RemoveQueuedTurn(ctx context.Context, sessionID, turnID string) error {
	_, err := c.Raw.RemoveQueuedTurn(c.ctx(ctx), &kodav1.RemoveQueuedTurnRequest{SessionId: sessionID, TurnId: turnID})
	return wrap(err)
}

// Rewind returns the session's workspace and/or history to just before turnID (see
// RewindSessionRequest); UnrewindSession undoes it.
func (c *Client) Rewind(ctx context.Context, sessionID, turnID string, files, history, force bool) (*kodav1.SessionRewound, error) {
	r, err := c.Raw.RewindSession(c.ctx(ctx), &kodav1.RewindSessionRequest{
		SessionId: sessionID, ToTurnId: turnID, Files: files, History: history, Force: force,
	})
	return r.GetRewound(), wrap(err)
}

// Unrewind undoes the session's latest rewind.
func (c *Client) Unrewind(ctx context.Context, sessionID string, force bool) (*kodav1.SessionRewound, error) {
	r, err := c.Raw.UnrewindSession(c.ctx(ctx), &kodav1.UnrewindSessionRequest{SessionId: sessionID, Force: force})
	return r.GetRewound(), wrap(err)
}

// TurnDiff is the unified diff and per-file stats of what a turn changed in the workspace.
func (c *Client) TurnDiff(ctx context.Context, sessionID, turnID string) (*kodav1.GetTurnDiffResponse, error) {
	r, err := c.Raw.GetTurnDiff(c.ctx(ctx), &kodav1.GetTurnDiffRequest{SessionId: sessionID, TurnId: turnID})
	return r, wrap(err)
}

// FileChanges lists the files the session's tools created, modified or deleted (of one turn
// when turnID is set), oldest first.
func (c *Client) FileChanges(ctx context.Context, sessionID, turnID string) ([]*kodav1.FileChange, error) {
	var out []*kodav1.FileChange
	token := ""
	for {
		page, err := c.Raw.ListFileChanges(c.ctx(ctx), &kodav1.ListFileChangesRequest{
			SessionId: sessionID, TurnId: turnID, PageSize: 1000, PageToken: token,
		})
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, page.Changes...)
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// Compact summarises the session's older history now (as a turn of its own).
func (c *Client) Compact(ctx context.Context, sessionID string) (*kodav1.CompactSessionResponse, error) {
	r, err := c.Raw.CompactSession(c.ctx(ctx), &kodav1.CompactSessionRequest{SessionId: sessionID})
	return r, wrap(err)
}

// AgentProfiles lists the agent profiles sessions may use (with workspace, its own too).
func (c *Client) AgentProfiles(ctx context.Context, workspace string) ([]*kodav1.AgentProfile, error) {
	r, err := c.Raw.ListAgentProfiles(c.ctx(ctx), &kodav1.ListAgentProfilesRequest{Workspace: workspace})
	return r.GetProfiles(), wrap(err)
}

// AgentProfile returns one agent profile by name (with workspace, its own ones included).
func (c *Client) AgentProfile(ctx context.Context, name, workspace string) (*kodav1.AgentProfile, error) {
	r, err := c.Raw.GetAgentProfile(c.ctx(ctx), &kodav1.GetAgentProfileRequest{Name: name, Workspace: workspace})
	return r.GetProfile(), wrap(err)
}

// DecodeOutput reads the answer of a turn started with an output schema into v (as
// encoding/json does); an error when the turn has none.
func DecodeOutput(ended *kodav1.TurnEnded, v any) error {
	if ended.GetOutputJson() == "" {
		return errors.New("kodad: the turn has no output (no output schema, or it did not complete)")
	}
	return json.Unmarshal([]byte(ended.GetOutputJson()), v)
}

// Watch yields the stored events of a session after afterSeq, then live ones, until ctx ends.
func (c *Client) Watch(ctx context.Context, sessionID string, afterSeq int64) iter.Seq2[*kodav1.EngineEvent, error] {
	return func(yield func(*kodav1.EngineEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Raw.WatchSession(c.ctx(ctx), &kodav1.WatchSessionRequest{SessionId: sessionID, AfterSeq: afterSeq})
		if err != nil {
			yield(nil, wrap(err))
			return
		}
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, wrap(err))
				return
			}
			if !yield(r.Event, nil) {
				return
			}
		}
	}
}

// Turn is a running turn, driven step by step: Recv events, answer questions, Cancel.
type Turn struct {
	stream grpc.BidiStreamingClient[kodav1.RunTurnRequest, kodav1.RunTurnResponse]
	cancel context.CancelFunc
	ended  bool
	// ID is the turn's id, known after the first event.
	ID string
}

// StartTurn starts a turn on a session. Breaking ctx breaks the stream (and, unless
// continueOnDisconnect, cancels the turn).
func (c *Client) StartTurn(ctx context.Context, sessionID, text string, continueOnDisconnect bool) (*Turn, error) {
	return c.StartTurnWith(ctx, sessionID, text, TurnOptions{ContinueOnDisconnect: continueOnDisconnect})
}

// TurnOptions are the optional parts of a turn's start.
type TurnOptions struct {
	// Keep the turn running when the stream breaks (else it is cancelled).
	ContinueOnDisconnect bool
	// What to do when the session runs a turn: reject (the default), enqueue, interrupt, steer.
	WhenBusy kodav1.WhenBusy
	// A JSON Schema (any value encoding/json marshals) the answer must match; read the
	// answer with DecodeOutput.
	OutputSchema any
	// Budgets of the turn (0: none).
	MaxTotalTokens int64
	MaxCost        float64
}

// StartTurnWith starts a turn with options.
func (c *Client) StartTurnWith(ctx context.Context, sessionID, text string, opts TurnOptions) (*Turn, error) {
	schema := ""
	if opts.OutputSchema != nil {
		data, err := json.Marshal(opts.OutputSchema)
		if err != nil {
			return nil, fmt.Errorf("kodad: the output schema is not JSON: %w", err)
		}
		schema = string(data)
	}
	ctx, cancel := context.WithCancel(c.ctx(ctx))
	stream, err := c.Raw.RunTurn(ctx)
	if err != nil {
		cancel()
		return nil, wrap(err)
	}
	policy := kodav1.DisconnectPolicy_DISCONNECT_POLICY_CANCEL
	if opts.ContinueOnDisconnect {
		policy = kodav1.DisconnectPolicy_DISCONNECT_POLICY_CONTINUE
	}
	start := &kodav1.EngineCommand{Command: &kodav1.EngineCommand_StartTurn{StartTurn: &kodav1.StartTurn{
		SessionId: sessionID, Text: text, OnDisconnect: policy, WhenBusy: opts.WhenBusy,
		OutputSchemaJson: schema, MaxTotalTokens: opts.MaxTotalTokens, MaxCost: opts.MaxCost,
	}}}
	if err := stream.Send(&kodav1.RunTurnRequest{Command: start}); err != nil {
		cancel()
		return nil, wrap(err)
	}
	return &Turn{stream: stream, cancel: cancel}, nil
}

// Recv returns the next event; io.EOF once the stream closed after turn_ended.
func (t *Turn) Recv() (*kodav1.EngineEvent, error) {
	r, err := t.stream.Recv()
	if err != nil {
		t.ended = true
		t.cancel()
		return nil, wrap(err)
	}
	if t.ID == "" {
		t.ID = r.Event.TurnId
	}
	if r.Event.GetTurnEnded() != nil {
		t.ended = true
	}
	return r.Event, nil
}

// Send sends any command to the turn (a decision, an answer, a steer, a cancel).
func (t *Turn) Send(command *kodav1.EngineCommand) error {
	return wrap(t.stream.Send(&kodav1.RunTurnRequest{Command: command}))
}

func (t *Turn) send(command *kodav1.EngineCommand) error { return t.Send(command) }

// Answer answers an ask_user question (user_question) of the turn.
func (t *Turn) Answer(requestID, text string) error {
	return t.send(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_UserAnswer{
		UserAnswer: &kodav1.UserAnswer{RequestId: requestID, Text: text},
	}})
}

// Approve answers an approval request on the turn's stream.
func (t *Turn) Approve(requestID string, decision kodav1.Decision, feedback string) error {
	return t.send(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_ApprovalDecision{
		ApprovalDecision: &kodav1.ApprovalDecision{RequestId: requestID, Decision: decision, Feedback: feedback},
	}})
}

// DecideLoop answers a loop-cap question on the turn's stream.
func (t *Turn) DecideLoop(action kodav1.LoopAction, extraIterations int32) error {
	return t.send(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_LoopDecision{
		LoopDecision: &kodav1.LoopDecision{Action: action, ExtraIterations: extraIterations},
	}})
}

// Steer adds input to the running turn: the model sees it at its next request (the event
// user_input_added shows where it landed); too late for the turn, it is queued as the
// session's next turn instead.
func (t *Turn) Steer(text string) error {
	return t.send(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_Steer{Steer: &kodav1.Steer{Text: text}}})
}

// Cancel asks the service to cancel the turn; the events end with turn_ended CANCELLED.
func (t *Turn) Cancel() error {
	return t.send(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_Cancel{Cancel: &kodav1.Cancel{}}})
}

// Close ends the turn if it still runs: it cancels it and waits (at most 10 s) for its
// turn_ended, then closes the stream, so the session's next turn can start at once.
// RunTurn does this when its loop is left early.
func (t *Turn) Close() {
	defer t.cancel()
	if t.ended || t.Cancel() != nil {
		return
	}
	timer := time.AfterFunc(10*time.Second, t.cancel)
	defer timer.Stop()
	for {
		event, err := t.Recv()
		if err != nil || event.GetTurnEnded() != nil {
			return
		}
	}
}

// ApprovalAnswer is a decision on an approval request; Skip leaves it to another client.
type ApprovalAnswer struct {
	Decision kodav1.Decision
	Feedback string
	Skip     bool
}

// LoopAnswer is a decision on a loop-cap question; Skip leaves it to another client.
type LoopAnswer struct {
	Action          kodav1.LoopAction
	ExtraIterations int32
	Skip            bool
}

// QuestionAnswer answers an ask_user question; Skip leaves it to another client.
type QuestionAnswer struct {
	Text string
	Skip bool
}

// ContractVersion is the koda.v1 contract version this client was built for; compare it
// with ServerInfo's ContractVersion (major.minor) to detect a service of another release.
const ContractVersion = "0.2.0"

// NoAnswer is what an ask_user question gets when the turn has no question handler.
const NoAnswer = "Nobody can answer questions here: decide yourself, go on, and say in your " +
	"answer what you assumed."

// Handlers answer a turn's questions. Nil handlers reject approvals, stop at the cap and
// answer ask_user questions with NoAnswer.
type Handlers struct {
	OnApproval func(*kodav1.ApprovalRequested) ApprovalAnswer
	OnLoopCap  func(*kodav1.LoopCapReached) LoopAnswer
	OnQuestion func(*kodav1.UserQuestion) QuestionAnswer
	// ContinueOnDisconnect keeps the turn running if the stream breaks.
	ContinueOnDisconnect bool
}

// RunTurn runs a turn and yields its events until turn_ended, answering questions with h.
// Leaving the loop early cancels the turn (see Turn.Close).
func (c *Client) RunTurn(ctx context.Context, sessionID, text string, h Handlers) iter.Seq2[*kodav1.EngineEvent, error] {
	return func(yield func(*kodav1.EngineEvent, error) bool) {
		turn, err := c.StartTurn(ctx, sessionID, text, h.ContinueOnDisconnect)
		if err != nil {
			yield(nil, err)
			return
		}
		defer turn.Close()
		for {
			event, err := turn.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(event, nil) {
				return
			}
			switch p := event.Payload.(type) {
			case *kodav1.EngineEvent_ApprovalRequested:
				answer := ApprovalAnswer{Decision: kodav1.Decision_DECISION_REJECT}
				if h.OnApproval != nil {
					answer = h.OnApproval(p.ApprovalRequested)
				}
				if !answer.Skip {
					err = turn.Approve(p.ApprovalRequested.RequestId, answer.Decision, answer.Feedback)
				}
			case *kodav1.EngineEvent_LoopCapReached:
				answer := LoopAnswer{Action: kodav1.LoopAction_LOOP_ACTION_STOP}
				if h.OnLoopCap != nil {
					answer = h.OnLoopCap(p.LoopCapReached)
				}
				if !answer.Skip {
					err = turn.DecideLoop(answer.Action, answer.ExtraIterations)
				}
			case *kodav1.EngineEvent_UserQuestion:
				answer := QuestionAnswer{Text: NoAnswer}
				if h.OnQuestion != nil {
					answer = h.OnQuestion(p.UserQuestion)
				}
				if !answer.Skip {
					err = turn.Answer(p.UserQuestion.RequestId, answer.Text)
				}
			}
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}
