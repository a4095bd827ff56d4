package dev.kodad.client;

import dev.kodad.koda.v1.ApprovalDecision;
import dev.kodad.koda.v1.Cancel;
import dev.kodad.koda.v1.Decision;
import dev.kodad.koda.v1.EngineCommand;
import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.LoopAction;
import dev.kodad.koda.v1.LoopDecision;
import dev.kodad.koda.v1.RunTurnRequest;
import dev.kodad.koda.v1.Steer;
import dev.kodad.koda.v1.UserAnswer;
import io.grpc.stub.ClientCallStreamObserver;

/** The command side of a turn's stream, shared by the blocking and the observer styles. */
public abstract class TurnStream implements AutoCloseable {
  ClientCallStreamObserver<RunTurnRequest> requests;
  boolean finished;
  Handlers handlers;

  TurnStream(Handlers handlers) {
    this.handlers = handlers;
  }

  private boolean halfClosed;

  /**
   * Sends a command on the turn's stream (null half-closes it). Once the turn has ended, or the
   * stream is closed, there is nobody to receive it: it is dropped.
   */
  public synchronized void send(EngineCommand command) {
    if (halfClosed) {
      return;
    }
    if (command == null) {
      halfClosed = true;
      requests.onCompleted();
      return;
    }
    requests.onNext(RunTurnRequest.newBuilder().setCommand(command).build());
  }

  /** Answers an ask_user question (user_question) of the turn. */
  public void answer(String requestId, String text) {
    send(
        EngineCommand.newBuilder()
            .setUserAnswer(UserAnswer.newBuilder().setRequestId(requestId).setText(text))
            .build());
  }

  /** Answers an approval request on the turn's stream. */
  public void approve(String requestId, Decision decision, String feedback) {
    send(
        EngineCommand.newBuilder()
            .setApprovalDecision(
                ApprovalDecision.newBuilder()
                    .setRequestId(requestId)
                    .setDecision(decision)
                    .setFeedback(feedback))
            .build());
  }

  /** Answers a loop-cap question on the turn's stream. */
  public void decideLoop(LoopAction action, int extraIterations) {
    send(
        EngineCommand.newBuilder()
            .setLoopDecision(
                LoopDecision.newBuilder().setAction(action).setExtraIterations(extraIterations))
            .build());
  }

  /**
   * Adds input to the running turn: the model sees it at its next request (the event
   * user_input_added shows where it landed); too late for the turn, it is queued as the
   * session's next turn instead.
   */
  public void steer(String text) {
    send(EngineCommand.newBuilder().setSteer(Steer.newBuilder().setText(text)).build());
  }

  /** Asks the service to cancel the turn; the events end with turn_ended CANCELLED. */
  public void cancel() {
    send(EngineCommand.newBuilder().setCancel(Cancel.getDefaultInstance()).build());
  }

  /** Answers a question an event asks, with the handlers given to runTurn. */
  void respond(EngineEvent event) {
    if (handlers == null) {
      return;
    }
    switch (event.getPayloadCase()) {
      case APPROVAL_REQUESTED -> {
        Handlers.ApprovalAnswer answer = handlers.onApproval.decide(event.getApprovalRequested());
        if (answer != null) {
          approve(event.getApprovalRequested().getRequestId(), answer.decision(), answer.feedback());
        }
      }
      case LOOP_CAP_REACHED -> {
        Handlers.LoopAnswer answer = handlers.onLoopCap.decide(event.getLoopCapReached());
        if (answer != null) {
          decideLoop(answer.action(), answer.extraIterations());
        }
      }
      case USER_QUESTION -> {
        String text = handlers.onQuestion.answer(event.getUserQuestion());
        if (text != null) {
          answer(event.getUserQuestion().getRequestId(), text);
        }
      }
      default -> {}
    }
  }

  /** Abandons the stream at once (the turn is cancelled unless it continues on disconnect). */
  synchronized void abandon() {
    if (!finished) {
      finished = true;
      halfClosed = true;
      requests.cancel("closed by the client", null);
    }
  }

  /**
   * Ends the turn if it still runs: cancels it and closes the stream. Use try-with-resources, so
   * that leaving the loop early (break, return, a throw) cancels the turn.
   */
  @Override
  public void close() {
    abandon();
  }
}
