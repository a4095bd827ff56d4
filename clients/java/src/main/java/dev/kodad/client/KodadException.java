package dev.kodad.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/** A failed call: the gRPC status code and the service's message. */
public final class KodadException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final Status.Code code;

  public KodadException(Status.Code code, String message, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
  }

  /** The gRPC status code, e.g. {@code NOT_FOUND}. */
  public Status.Code code() {
    return code;
  }

  /** The service's message, without the code. */
  public String description() {
    return getMessage().substring(code.toString().length() + 2);
  }

  /** Converts what a call threw; gRPC failures become KodadException. */
  static RuntimeException from(Throwable error) {
    if (error instanceof KodadException k) {
      return k;
    }
    if (error instanceof StatusRuntimeException s) {
      Status status = s.getStatus();
      return new KodadException(
          status.getCode(), status.getDescription() == null ? "" : status.getDescription(), s);
    }
    if (error instanceof io.grpc.StatusException s) {
      Status status = s.getStatus();
      return new KodadException(
          status.getCode(), status.getDescription() == null ? "" : status.getDescription(), s);
    }
    if (error instanceof RuntimeException r) {
      return r;
    }
    return new RuntimeException(error);
  }
}
