package dev.kodad.client;

import dev.kodad.koda.v1.ApprovalRequested;
import dev.kodad.koda.v1.Decision;
import dev.kodad.koda.v1.LoopAction;
import dev.kodad.koda.v1.LoopCapReached;
import dev.kodad.koda.v1.UserQuestion;

/**
 * Answers a turn's questions. The defaults reject approvals, stop at the loop cap and answer
 * ask_user questions with {@link #NO_ANSWER}; a handler returning {@code null} leaves the question
 * to another client.
 */
public final class Handlers {
  /** A decision on an approval request. */
  public record ApprovalAnswer(Decision decision, String feedback) {
    public static ApprovalAnswer of(Decision decision) {
      return new ApprovalAnswer(decision, "");
    }
  }

  /** A decision on a loop-cap question. */
  public record LoopAnswer(LoopAction action, int extraIterations) {
    public static LoopAnswer of(LoopAction action) {
      return new LoopAnswer(action, 0);
    }
  }

  /** Decides an approval request; null leaves it to another client. */
  @FunctionalInterface
  public interface OnApproval {
    ApprovalAnswer decide(ApprovalRequested request);
  }

  /** Decides a loop-cap question; null leaves it to another client. */
  @FunctionalInterface
  public interface OnLoopCap {
    LoopAnswer decide(LoopCapReached question);
  }

  /** Answers an ask_user question; null leaves it to another client. */
  @FunctionalInterface
  public interface OnQuestion {
    String answer(UserQuestion question);
  }

  /** What an ask_user question gets when the turn has no question handler. */
  public static final String NO_ANSWER =
      "Nobody can answer questions here: decide yourself, go on, and say in your answer what "
          + "you assumed.";

  OnApproval onApproval = request -> ApprovalAnswer.of(Decision.DECISION_REJECT);
  OnLoopCap onLoopCap = question -> LoopAnswer.of(LoopAction.LOOP_ACTION_STOP);
  OnQuestion onQuestion = question -> NO_ANSWER;
  boolean continueOnDisconnect;

  /** Handlers with the defaults: reject, stop, NO_ANSWER, cancel on disconnect. */
  public static Handlers defaults() {
    return new Handlers();
  }

  public Handlers onApproval(OnApproval handler) {
    this.onApproval = handler;
    return this;
  }

  public Handlers onLoopCap(OnLoopCap handler) {
    this.onLoopCap = handler;
    return this;
  }

  public Handlers onQuestion(OnQuestion handler) {
    this.onQuestion = handler;
    return this;
  }

  /** Keep the turn running if the stream breaks (default: it is cancelled). */
  public Handlers continueOnDisconnect(boolean value) {
    this.continueOnDisconnect = value;
    return this;
  }
}
