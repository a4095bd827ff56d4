package dev.kodad.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * A failed call: the gRPC status code, the service's message and the status's
 * google.rpc.ErrorInfo (reason and metadata).
 */
public final class KodadException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final Status.Code code;
  private final String reason;
  private final Map<String, String> metadata;

  public KodadException(Status.Code code, String message, Throwable cause) {
    this(code, message, cause, "", Map.of());
  }

  public KodadException(
      Status.Code code,
      String message,
      Throwable cause,
      String reason,
      Map<String, String> metadata) {
    super(code + ": " + message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  /** The gRPC status code, e.g. {@code NOT_FOUND}. */
  public Status.Code code() {
    return code;
  }

  /** The service's message, without the code. */
  public String description() {
    return getMessage().substring(code.toString().length() + 2);
  }

  /**
   * The ErrorInfo's reason, e.g. {@code TURN_ALREADY_RUNNING} (the proto's SessionService comment
   * lists them); empty when the failure did not come from kodad.
   */
  public String reason() {
    return reason;
  }

  /** The ErrorInfo's metadata, e.g. {@code turn_id} for {@code TURN_ALREADY_RUNNING}. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Converts what a call threw; gRPC failures become KodadException. */
  static RuntimeException from(Throwable error) {
    if (error instanceof KodadException k) {
      return k;
    }
    if (error instanceof StatusRuntimeException || error instanceof StatusException) {
      Status status = Status.fromThrowable(error);
      String description = status.getDescription() == null ? "" : status.getDescription();
      ErrorInfo info = errorInfo(error);
      return new KodadException(
          status.getCode(), description, error, info.getReason(), info.getMetadataMap());
    }
    if (error instanceof RuntimeException r) {
      return r;
    }
    return new RuntimeException(error);
  }

  private static ErrorInfo errorInfo(Throwable error) {
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    if (status != null) {
      for (Any detail : status.getDetailsList()) {
        if (detail.is(ErrorInfo.class)) {
          try {
            return detail.unpack(ErrorInfo.class);
          } catch (InvalidProtocolBufferException e) {
            break; // a malformed detail: no ErrorInfo
          }
        }
      }
    }
    return ErrorInfo.getDefaultInstance();
  }
}
