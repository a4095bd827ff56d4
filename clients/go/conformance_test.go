package kodad_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kodad/kodad/clients/go"
	kodav1 "github.com/kodad/kodad/clients/go/gen/koda/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// startKodad runs `kodad serve` from the repository's virtualenv on a free port.
func startKodad(t *testing.T) string {
	t.Helper()
	python := os.Getenv("KODAD_PYTHON")
	if python == "" {
		python = "../../.venv/bin/python"
	}
	cmd := exec.Command(python, "-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start kodad (%s): %v", python, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	serving := regexp.MustCompile(`serving on (\S+)`)
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if m := serving.FindStringSubmatch(lines.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return m[1]
		}
	}
	t.Fatal("kodad exited before serving")
	return ""
}

type scenario struct {
	Session struct {
		ApprovalMode string            `json:"approval_mode"`
		LoopCap      int32             `json:"loop_cap"`
		Script       json.RawMessage   `json:"script"`
		Files        map[string]string `json:"files"`
	} `json:"session"`
	Steps  []map[string]any `json:"steps"`
	Expect map[string]any   `json:"expect"`
}

func kind(e *kodav1.EngineEvent) string {
	m := e.ProtoReflect()
	return string(m.WhichOneof(m.Descriptor().Oneofs().ByName("payload")).Name())
}

func str(m map[string]any, key string) string { s, _ := m[key].(string); return s }

func num(m map[string]any, key string) (int64, bool) {
	f, ok := m[key].(float64)
	return int64(f), ok
}

type runner struct {
	t         *testing.T
	ctx       context.Context
	client    *kodad.Client
	session   *kodav1.Session
	workspace string
	turn      *kodad.Turn
	events    []*kodav1.EngineEvent
}

func (r *runner) read() *kodav1.EngineEvent {
	r.t.Helper()
	event, err := r.turn.Recv()
	if err != nil {
		r.t.Fatalf("reading an event: %v", err)
	}
	r.events = append(r.events, event)
	return event
}

func (r *runner) last(k string) *kodav1.EngineEvent {
	for i := len(r.events) - 1; i >= 0; i-- {
		if kind(r.events[i]) == k {
			return r.events[i]
		}
	}
	r.t.Fatalf("no %s event", k)
	return nil
}

func (r *runner) expectCode(err error, want string) {
	r.t.Helper()
	var code codes.Code
	if err := code.UnmarshalJSON([]byte(`"` + want + `"`)); err != nil {
		r.t.Fatal(err)
	}
	if kodad.Code(err) != code {
		r.t.Fatalf("want %s, got %v", want, err)
	}
}

func (r *runner) submit(command *kodav1.EngineCommand, want string) {
	r.t.Helper()
	_, err := r.client.Submit(r.ctx, r.session.Id, command)
	if want != "" {
		r.expectCode(err, want)
	} else if err != nil {
		r.t.Fatal(err)
	}
}

// step runs one scenario step; false ends the scenario (an expected error happened).
func (r *runner) step(s map[string]any) bool {
	t := r.t
	switch str(s, "do") {
	case "start":
		id := r.session.Id
		if s["session_id"] != nil {
			id = str(s, "session_id")
		}
		turn, err := r.client.StartTurnWith(r.ctx, id, str(s, "text"), kodad.TurnOptions{OutputSchema: s["output_schema"]})
		if err != nil {
			t.Fatal(err)
		}
		r.turn = turn
		if want := str(s, "expect_code"); want != "" {
			_, err := turn.Recv()
			r.expectCode(err, want)
			return false
		}
	case "read_until":
		for kind(r.read()) != str(s, "kind") {
		}
	case "decide":
		request := r.last("approval_requested").GetApprovalRequested()
		decision := kodav1.Decision(kodav1.Decision_value[str(s, "decision")])
		if str(s, "via") == "submit" {
			r.submit(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_ApprovalDecision{ApprovalDecision: &kodav1.ApprovalDecision{
				RequestId: request.RequestId, Decision: decision, Feedback: str(s, "feedback"),
			}}}, str(s, "expect_code"))
		} else if err := r.turn.Approve(request.RequestId, decision, str(s, "feedback")); err != nil {
			t.Fatal(err)
		}
	case "loop":
		action := kodav1.LoopAction(kodav1.LoopAction_value[str(s, "action")])
		extra, _ := num(s, "extra_iterations")
		if str(s, "via") == "submit" {
			r.submit(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_LoopDecision{LoopDecision: &kodav1.LoopDecision{
				Action: action, ExtraIterations: int32(extra),
			}}}, str(s, "expect_code"))
		} else if err := r.turn.DecideLoop(action, int32(extra)); err != nil {
			t.Fatal(err)
		}
	case "answer":
		asked := r.last("user_question").GetUserQuestion()
		if str(s, "via") == "submit" {
			r.submit(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_UserAnswer{UserAnswer: &kodav1.UserAnswer{
				RequestId: asked.RequestId, Text: str(s, "text"),
			}}}, str(s, "expect_code"))
		} else if err := r.turn.Answer(asked.RequestId, str(s, "text")); err != nil {
			t.Fatal(err)
		}
	case "run":
		var kept []*kodav1.EngineEvent
		left := false
		for event, err := range r.client.RunTurn(r.ctx, r.session.Id, str(s, "text"), kodad.Handlers{}) {
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, event)
			if leave := str(s, "leave_after"); leave != "" && kind(event) == leave {
				left = true
				break // leaving the loop: the turn is cancelled
			}
		}
		if !left {
			r.events = append(r.events, kept...)
		}
	case "cancel":
		if str(s, "via") == "cancel_turn" {
			if _, err := r.client.CancelTurn(r.ctx, r.session.Id); err != nil {
				t.Fatal(err)
			}
		} else if err := r.turn.Cancel(); err != nil {
			t.Fatal(err)
		}
	case "steer":
		if str(s, "via") == "submit" {
			r.submit(&kodav1.EngineCommand{Command: &kodav1.EngineCommand_Steer{Steer: &kodav1.Steer{Text: str(s, "text")}}}, "")
		} else if err := r.turn.Steer(str(s, "text")); err != nil {
			t.Fatal(err)
		}
	case "start_second":
		second, err := r.client.StartTurn(r.ctx, r.session.Id, str(s, "text"), false)
		if err == nil {
			_, err = second.Recv()
		}
		r.expectCode(err, str(s, "expect_code"))
		if s["message_contains_turn_id"] == true && !strings.Contains(err.Error(), r.turn.ID) {
			t.Fatalf("%v does not name turn %s", err, r.turn.ID)
		}
	case "finish":
		for kind(r.read()) != "turn_ended" {
		}
		if _, err := r.turn.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("the stream should close OK after turn_ended, got %v", err)
		}
	case "watch":
		after, _ := num(s, "after_seq")
		var want []*kodav1.EngineEvent
		for _, e := range r.events {
			if e.Seq > after {
				want = append(want, e)
			}
		}
		ctx, cancel := context.WithCancel(r.ctx)
		defer cancel()
		var got []*kodav1.EngineEvent
		for event, err := range r.client.Watch(ctx, r.session.Id, after) {
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, event); len(got) == len(want) {
				break
			}
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("watch event %d: got %v, want %v", i, got[i], want[i])
			}
		}
	default:
		t.Fatalf("unknown step %v", s["do"])
	}
	return true
}

func (r *runner) check(expect map[string]any) {
	t := r.t
	var kinds []string
	for i, e := range r.events {
		kinds = append(kinds, kind(e))
		if e.Seq != r.events[0].Seq+int64(i) {
			t.Fatalf("seqs are not gap-free: %d at %d", e.Seq, i)
		}
	}
	if want, ok := expect["kinds"].([]any); ok {
		var names []string
		for _, k := range want {
			names = append(names, k.(string))
		}
		if !slices.Equal(kinds, names) {
			t.Fatalf("kinds %v, want %v", kinds, names)
		}
	}
	if want, ok := expect["kinds_include"].([]any); ok {
		i := 0
		for _, k := range kinds {
			if i < len(want) && k == want[i] {
				i++
			}
		}
		if i != len(want) {
			t.Fatalf("kinds %v do not include %v in order", kinds, want)
		}
	}
	if want, ok := expect["subagent"].(map[string]any); ok {
		children := map[string]bool{}
		var tagged []string
		for _, e := range r.events {
			if e.SubagentSessionId == "" {
				continue
			}
			children[e.SubagentSessionId] = true
			if e.ParentCallId != want["parent_call_id"].(string) {
				t.Fatalf("parent_call_id %q, want %q", e.ParentCallId, want["parent_call_id"])
			}
			tagged = append(tagged, kind(e))
		}
		if len(children) != 1 || children[r.session.Id] {
			t.Fatalf("sub-agent sessions %v", children)
		}
		var names []string
		for _, k := range want["kinds"].([]any) {
			names = append(names, k.(string))
		}
		if !slices.Equal(tagged, names) {
			t.Fatalf("sub-agent kinds %v, want %v", tagged, names)
		}
	}
	if counts, ok := expect["count"].(map[string]any); ok {
		for k, n := range counts {
			got := 0
			for _, have := range kinds {
				if have == k {
					got++
				}
			}
			if float64(got) != n.(float64) {
				t.Fatalf("%d %s events, want %v", got, k, n)
			}
		}
	}
	if want, ok := expect["text"].(string); ok {
		var text strings.Builder
		for _, e := range r.events {
			text.WriteString(e.GetTextDelta().GetText())
		}
		if text.String() != want {
			t.Fatalf("text %q, want %q", text.String(), want)
		}
	}
	if want, ok := expect["turn_ended"].(map[string]any); ok {
		ended := r.last("turn_ended").GetTurnEnded()
		if ended.Reason.String() != str(want, "reason") {
			t.Fatalf("turn ended %v, want %v", ended.Reason, want["reason"])
		}
		if n, ok := num(want, "input_tokens"); ok && ended.Usage.GetInputTokens() != n {
			t.Fatalf("input tokens %d, want %d", ended.Usage.GetInputTokens(), n)
		}
		if n, ok := num(want, "output_tokens"); ok && ended.Usage.GetOutputTokens() != n {
			t.Fatalf("output tokens %d, want %d", ended.Usage.GetOutputTokens(), n)
		}
	}
	if files, ok := expect["files"].(map[string]any); ok {
		for path, content := range files {
			data, err := os.ReadFile(filepath.Join(r.workspace, path))
			if err != nil || string(data) != content {
				t.Fatalf("file %s: %q, %v; want %q", path, data, err, content)
			}
		}
	}
	finished := map[string]*kodav1.ToolCallFinished{}
	streamed := map[string]int{}
	for _, e := range r.events {
		if f := e.GetToolCallFinished(); f != nil {
			finished[f.CallId] = f
		}
		if o := e.GetToolCallOutput(); o != nil {
			streamed[o.CallId] += len([]rune(o.Chunk))
		}
	}
	if results, ok := expect["tool_results"].(map[string]any); ok {
		for id, w := range results {
			want, got := w.(map[string]any), finished[id]
			if got == nil {
				t.Fatalf("no result for call %s", id)
			}
			if v, ok := want["is_error"].(bool); ok && got.IsError != v {
				t.Fatalf("call %s is_error %v", id, got.IsError)
			}
			if v, ok := want["output"].(string); ok && got.Output != v {
				t.Fatalf("call %s output %q, want %q", id, got.Output, v)
			}
			if v, ok := want["truncated"].(bool); ok && got.Truncated != v {
				t.Fatalf("call %s truncated %v", id, got.Truncated)
			}
			if n, ok := num(want, "output_length"); ok && int64(len([]rune(got.Output))) != n {
				t.Fatalf("call %s output length %d, want %d", id, len([]rune(got.Output)), n)
			}
		}
	}
	if lengths, ok := expect["streamed_output"].(map[string]any); ok {
		for id, n := range lengths {
			if float64(streamed[id]) != n.(float64) {
				t.Fatalf("call %s streamed %d characters, want %v", id, streamed[id], n)
			}
		}
	}
	if want, ok := expect["approval"].(map[string]any); ok {
		asked := r.last("approval_requested").GetApprovalRequested()
		if v, ok := want["summary"].(string); ok && asked.Summary != v {
			t.Fatalf("approval summary %q, want %q", asked.Summary, v)
		}
		if v, ok := want["tool_name"].(string); ok && asked.ToolName != v {
			t.Fatalf("approval tool %q, want %q", asked.ToolName, v)
		}
	}
	if want, ok := expect["approval_rules"].([]any); ok {
		session, err := r.client.GetSession(r.ctx, r.session.Id)
		if err != nil {
			t.Fatal(err)
		}
		if len(session.ApprovalRules) != len(want) {
			t.Fatalf("rules %v, want %v", session.ApprovalRules, want)
		}
		for i, w := range want {
			rule := w.(map[string]any)
			if session.ApprovalRules[i].ToolName != str(rule, "tool_name") || session.ApprovalRules[i].CommandPrefix != str(rule, "command_prefix") {
				t.Fatalf("rule %d: %v, want %v", i, session.ApprovalRules[i], rule)
			}
		}
	}
	if want, ok := expect["output"]; ok {
		var got any
		if err := kodad.DecodeOutput(r.last("turn_ended").GetTurnEnded(), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("output %v, want %v", got, want)
		}
	}
	if want, ok := expect["history_roles"].([]any); ok {
		messages, err := r.client.Messages(r.ctx, r.session.Id)
		if err != nil {
			t.Fatal(err)
		}
		var roles []string
		for _, m := range messages {
			roles = append(roles, m.Role.String())
		}
		if len(roles) != len(want) {
			t.Fatalf("roles %v, want %v", roles, want)
		}
		for i := range want {
			if roles[i] != want[i].(string) {
				t.Fatalf("roles %v, want %v", roles, want)
			}
		}
	}
}

func TestConformance(t *testing.T) {
	address := startKodad(t)
	client, err := kodad.Dial(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	paths, _ := filepath.Glob("../../tests/conformance/*.json")
	if len(paths) == 0 {
		t.Fatal("no scenarios found")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenario
			if err := json.Unmarshal(data, &sc); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r := &runner{t: t, ctx: ctx, client: client, workspace: t.TempDir()}
			for path, content := range sc.Session.Files {
				full := filepath.Join(r.workspace, path)
				_ = os.MkdirAll(filepath.Dir(full), 0o755)
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			session := &kodav1.Session{
				Workspace:    r.workspace,
				ApprovalMode: kodav1.ApprovalMode(kodav1.ApprovalMode_value[sc.Session.ApprovalMode]),
				LoopCap:      sc.Session.LoopCap,
			}
			if len(sc.Session.Script) > 0 {
				session.Provider = &kodav1.ProviderConfig{Kind: kodav1.ProviderKind_PROVIDER_KIND_SCRIPTED, ScriptJson: string(sc.Session.Script)}
			}
			if r.session, err = client.CreateSession(ctx, session); err != nil {
				t.Fatal(err)
			}
			for _, s := range sc.Steps {
				if !r.step(s) {
					return
				}
			}
			r.check(sc.Expect)
		})
	}
}
