package dev.kodad.koda.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Keeps coding-agent sessions and runs their turns.
 * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
 * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
 * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
 * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
 * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
 * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
 * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
 *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
 *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
 *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
 *                             metadata session_id, turn_id, running_turn_id
 *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
 *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
 *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
 *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
 *                             turns_per_tenant) and value
 *   LEASE_LOST                ABORTED: another replica took the session over; metadata
 *                             session_id
 *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
 *                             outside kodad; metadata session_id, paths (comma-separated)
 *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
 *                             cost_budget is spent; metadata session_id, budget ("tokens"
 *                             or "cost")
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class SessionServiceGrpc {

  private SessionServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "koda.v1.SessionService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetServerInfoRequest,
      dev.kodad.koda.v1.GetServerInfoResponse> getGetServerInfoMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetServerInfo",
      requestType = dev.kodad.koda.v1.GetServerInfoRequest.class,
      responseType = dev.kodad.koda.v1.GetServerInfoResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetServerInfoRequest,
      dev.kodad.koda.v1.GetServerInfoResponse> getGetServerInfoMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetServerInfoRequest, dev.kodad.koda.v1.GetServerInfoResponse> getGetServerInfoMethod;
    if ((getGetServerInfoMethod = SessionServiceGrpc.getGetServerInfoMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getGetServerInfoMethod = SessionServiceGrpc.getGetServerInfoMethod) == null) {
          SessionServiceGrpc.getGetServerInfoMethod = getGetServerInfoMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.GetServerInfoRequest, dev.kodad.koda.v1.GetServerInfoResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetServerInfo"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetServerInfoRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetServerInfoResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("GetServerInfo"))
              .build();
        }
      }
    }
    return getGetServerInfoMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListModelsRequest,
      dev.kodad.koda.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = dev.kodad.koda.v1.ListModelsRequest.class,
      responseType = dev.kodad.koda.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListModelsRequest,
      dev.kodad.koda.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListModelsRequest, dev.kodad.koda.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = SessionServiceGrpc.getListModelsMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getListModelsMethod = SessionServiceGrpc.getListModelsMethod) == null) {
          SessionServiceGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ListModelsRequest, dev.kodad.koda.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.CreateSessionRequest,
      dev.kodad.koda.v1.CreateSessionResponse> getCreateSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateSession",
      requestType = dev.kodad.koda.v1.CreateSessionRequest.class,
      responseType = dev.kodad.koda.v1.CreateSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.CreateSessionRequest,
      dev.kodad.koda.v1.CreateSessionResponse> getCreateSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.CreateSessionRequest, dev.kodad.koda.v1.CreateSessionResponse> getCreateSessionMethod;
    if ((getCreateSessionMethod = SessionServiceGrpc.getCreateSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getCreateSessionMethod = SessionServiceGrpc.getCreateSessionMethod) == null) {
          SessionServiceGrpc.getCreateSessionMethod = getCreateSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.CreateSessionRequest, dev.kodad.koda.v1.CreateSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CreateSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CreateSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("CreateSession"))
              .build();
        }
      }
    }
    return getCreateSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetSessionRequest,
      dev.kodad.koda.v1.GetSessionResponse> getGetSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetSession",
      requestType = dev.kodad.koda.v1.GetSessionRequest.class,
      responseType = dev.kodad.koda.v1.GetSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetSessionRequest,
      dev.kodad.koda.v1.GetSessionResponse> getGetSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetSessionRequest, dev.kodad.koda.v1.GetSessionResponse> getGetSessionMethod;
    if ((getGetSessionMethod = SessionServiceGrpc.getGetSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getGetSessionMethod = SessionServiceGrpc.getGetSessionMethod) == null) {
          SessionServiceGrpc.getGetSessionMethod = getGetSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.GetSessionRequest, dev.kodad.koda.v1.GetSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("GetSession"))
              .build();
        }
      }
    }
    return getGetSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListSessionsRequest,
      dev.kodad.koda.v1.ListSessionsResponse> getListSessionsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListSessions",
      requestType = dev.kodad.koda.v1.ListSessionsRequest.class,
      responseType = dev.kodad.koda.v1.ListSessionsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListSessionsRequest,
      dev.kodad.koda.v1.ListSessionsResponse> getListSessionsMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListSessionsRequest, dev.kodad.koda.v1.ListSessionsResponse> getListSessionsMethod;
    if ((getListSessionsMethod = SessionServiceGrpc.getListSessionsMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getListSessionsMethod = SessionServiceGrpc.getListSessionsMethod) == null) {
          SessionServiceGrpc.getListSessionsMethod = getListSessionsMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ListSessionsRequest, dev.kodad.koda.v1.ListSessionsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListSessions"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListSessionsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListSessionsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ListSessions"))
              .build();
        }
      }
    }
    return getListSessionsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.UpdateSessionRequest,
      dev.kodad.koda.v1.UpdateSessionResponse> getUpdateSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpdateSession",
      requestType = dev.kodad.koda.v1.UpdateSessionRequest.class,
      responseType = dev.kodad.koda.v1.UpdateSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.UpdateSessionRequest,
      dev.kodad.koda.v1.UpdateSessionResponse> getUpdateSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.UpdateSessionRequest, dev.kodad.koda.v1.UpdateSessionResponse> getUpdateSessionMethod;
    if ((getUpdateSessionMethod = SessionServiceGrpc.getUpdateSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getUpdateSessionMethod = SessionServiceGrpc.getUpdateSessionMethod) == null) {
          SessionServiceGrpc.getUpdateSessionMethod = getUpdateSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.UpdateSessionRequest, dev.kodad.koda.v1.UpdateSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpdateSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.UpdateSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.UpdateSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("UpdateSession"))
              .build();
        }
      }
    }
    return getUpdateSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.DeleteSessionRequest,
      dev.kodad.koda.v1.DeleteSessionResponse> getDeleteSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteSession",
      requestType = dev.kodad.koda.v1.DeleteSessionRequest.class,
      responseType = dev.kodad.koda.v1.DeleteSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.DeleteSessionRequest,
      dev.kodad.koda.v1.DeleteSessionResponse> getDeleteSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.DeleteSessionRequest, dev.kodad.koda.v1.DeleteSessionResponse> getDeleteSessionMethod;
    if ((getDeleteSessionMethod = SessionServiceGrpc.getDeleteSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getDeleteSessionMethod = SessionServiceGrpc.getDeleteSessionMethod) == null) {
          SessionServiceGrpc.getDeleteSessionMethod = getDeleteSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.DeleteSessionRequest, dev.kodad.koda.v1.DeleteSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.DeleteSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.DeleteSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("DeleteSession"))
              .build();
        }
      }
    }
    return getDeleteSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ForkSessionRequest,
      dev.kodad.koda.v1.ForkSessionResponse> getForkSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ForkSession",
      requestType = dev.kodad.koda.v1.ForkSessionRequest.class,
      responseType = dev.kodad.koda.v1.ForkSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ForkSessionRequest,
      dev.kodad.koda.v1.ForkSessionResponse> getForkSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ForkSessionRequest, dev.kodad.koda.v1.ForkSessionResponse> getForkSessionMethod;
    if ((getForkSessionMethod = SessionServiceGrpc.getForkSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getForkSessionMethod = SessionServiceGrpc.getForkSessionMethod) == null) {
          SessionServiceGrpc.getForkSessionMethod = getForkSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ForkSessionRequest, dev.kodad.koda.v1.ForkSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ForkSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ForkSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ForkSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ForkSession"))
              .build();
        }
      }
    }
    return getForkSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListMessagesRequest,
      dev.kodad.koda.v1.ListMessagesResponse> getListMessagesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListMessages",
      requestType = dev.kodad.koda.v1.ListMessagesRequest.class,
      responseType = dev.kodad.koda.v1.ListMessagesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListMessagesRequest,
      dev.kodad.koda.v1.ListMessagesResponse> getListMessagesMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListMessagesRequest, dev.kodad.koda.v1.ListMessagesResponse> getListMessagesMethod;
    if ((getListMessagesMethod = SessionServiceGrpc.getListMessagesMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getListMessagesMethod = SessionServiceGrpc.getListMessagesMethod) == null) {
          SessionServiceGrpc.getListMessagesMethod = getListMessagesMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ListMessagesRequest, dev.kodad.koda.v1.ListMessagesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListMessages"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListMessagesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListMessagesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ListMessages"))
              .build();
        }
      }
    }
    return getListMessagesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListFileChangesRequest,
      dev.kodad.koda.v1.ListFileChangesResponse> getListFileChangesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListFileChanges",
      requestType = dev.kodad.koda.v1.ListFileChangesRequest.class,
      responseType = dev.kodad.koda.v1.ListFileChangesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListFileChangesRequest,
      dev.kodad.koda.v1.ListFileChangesResponse> getListFileChangesMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListFileChangesRequest, dev.kodad.koda.v1.ListFileChangesResponse> getListFileChangesMethod;
    if ((getListFileChangesMethod = SessionServiceGrpc.getListFileChangesMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getListFileChangesMethod = SessionServiceGrpc.getListFileChangesMethod) == null) {
          SessionServiceGrpc.getListFileChangesMethod = getListFileChangesMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ListFileChangesRequest, dev.kodad.koda.v1.ListFileChangesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListFileChanges"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListFileChangesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListFileChangesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ListFileChanges"))
              .build();
        }
      }
    }
    return getListFileChangesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.RunTurnRequest,
      dev.kodad.koda.v1.RunTurnResponse> getRunTurnMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RunTurn",
      requestType = dev.kodad.koda.v1.RunTurnRequest.class,
      responseType = dev.kodad.koda.v1.RunTurnResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.RunTurnRequest,
      dev.kodad.koda.v1.RunTurnResponse> getRunTurnMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.RunTurnRequest, dev.kodad.koda.v1.RunTurnResponse> getRunTurnMethod;
    if ((getRunTurnMethod = SessionServiceGrpc.getRunTurnMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getRunTurnMethod = SessionServiceGrpc.getRunTurnMethod) == null) {
          SessionServiceGrpc.getRunTurnMethod = getRunTurnMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.RunTurnRequest, dev.kodad.koda.v1.RunTurnResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RunTurn"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RunTurnRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RunTurnResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("RunTurn"))
              .build();
        }
      }
    }
    return getRunTurnMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.SubmitCommandRequest,
      dev.kodad.koda.v1.SubmitCommandResponse> getSubmitCommandMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SubmitCommand",
      requestType = dev.kodad.koda.v1.SubmitCommandRequest.class,
      responseType = dev.kodad.koda.v1.SubmitCommandResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.SubmitCommandRequest,
      dev.kodad.koda.v1.SubmitCommandResponse> getSubmitCommandMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.SubmitCommandRequest, dev.kodad.koda.v1.SubmitCommandResponse> getSubmitCommandMethod;
    if ((getSubmitCommandMethod = SessionServiceGrpc.getSubmitCommandMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getSubmitCommandMethod = SessionServiceGrpc.getSubmitCommandMethod) == null) {
          SessionServiceGrpc.getSubmitCommandMethod = getSubmitCommandMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.SubmitCommandRequest, dev.kodad.koda.v1.SubmitCommandResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SubmitCommand"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.SubmitCommandRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.SubmitCommandResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("SubmitCommand"))
              .build();
        }
      }
    }
    return getSubmitCommandMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.CancelTurnRequest,
      dev.kodad.koda.v1.CancelTurnResponse> getCancelTurnMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CancelTurn",
      requestType = dev.kodad.koda.v1.CancelTurnRequest.class,
      responseType = dev.kodad.koda.v1.CancelTurnResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.CancelTurnRequest,
      dev.kodad.koda.v1.CancelTurnResponse> getCancelTurnMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.CancelTurnRequest, dev.kodad.koda.v1.CancelTurnResponse> getCancelTurnMethod;
    if ((getCancelTurnMethod = SessionServiceGrpc.getCancelTurnMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getCancelTurnMethod = SessionServiceGrpc.getCancelTurnMethod) == null) {
          SessionServiceGrpc.getCancelTurnMethod = getCancelTurnMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.CancelTurnRequest, dev.kodad.koda.v1.CancelTurnResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CancelTurn"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CancelTurnRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CancelTurnResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("CancelTurn"))
              .build();
        }
      }
    }
    return getCancelTurnMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.RewindSessionRequest,
      dev.kodad.koda.v1.RewindSessionResponse> getRewindSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RewindSession",
      requestType = dev.kodad.koda.v1.RewindSessionRequest.class,
      responseType = dev.kodad.koda.v1.RewindSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.RewindSessionRequest,
      dev.kodad.koda.v1.RewindSessionResponse> getRewindSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.RewindSessionRequest, dev.kodad.koda.v1.RewindSessionResponse> getRewindSessionMethod;
    if ((getRewindSessionMethod = SessionServiceGrpc.getRewindSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getRewindSessionMethod = SessionServiceGrpc.getRewindSessionMethod) == null) {
          SessionServiceGrpc.getRewindSessionMethod = getRewindSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.RewindSessionRequest, dev.kodad.koda.v1.RewindSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RewindSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RewindSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RewindSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("RewindSession"))
              .build();
        }
      }
    }
    return getRewindSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.UnrewindSessionRequest,
      dev.kodad.koda.v1.UnrewindSessionResponse> getUnrewindSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UnrewindSession",
      requestType = dev.kodad.koda.v1.UnrewindSessionRequest.class,
      responseType = dev.kodad.koda.v1.UnrewindSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.UnrewindSessionRequest,
      dev.kodad.koda.v1.UnrewindSessionResponse> getUnrewindSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.UnrewindSessionRequest, dev.kodad.koda.v1.UnrewindSessionResponse> getUnrewindSessionMethod;
    if ((getUnrewindSessionMethod = SessionServiceGrpc.getUnrewindSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getUnrewindSessionMethod = SessionServiceGrpc.getUnrewindSessionMethod) == null) {
          SessionServiceGrpc.getUnrewindSessionMethod = getUnrewindSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.UnrewindSessionRequest, dev.kodad.koda.v1.UnrewindSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UnrewindSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.UnrewindSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.UnrewindSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("UnrewindSession"))
              .build();
        }
      }
    }
    return getUnrewindSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetTurnDiffRequest,
      dev.kodad.koda.v1.GetTurnDiffResponse> getGetTurnDiffMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetTurnDiff",
      requestType = dev.kodad.koda.v1.GetTurnDiffRequest.class,
      responseType = dev.kodad.koda.v1.GetTurnDiffResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetTurnDiffRequest,
      dev.kodad.koda.v1.GetTurnDiffResponse> getGetTurnDiffMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetTurnDiffRequest, dev.kodad.koda.v1.GetTurnDiffResponse> getGetTurnDiffMethod;
    if ((getGetTurnDiffMethod = SessionServiceGrpc.getGetTurnDiffMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getGetTurnDiffMethod = SessionServiceGrpc.getGetTurnDiffMethod) == null) {
          SessionServiceGrpc.getGetTurnDiffMethod = getGetTurnDiffMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.GetTurnDiffRequest, dev.kodad.koda.v1.GetTurnDiffResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetTurnDiff"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetTurnDiffRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetTurnDiffResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("GetTurnDiff"))
              .build();
        }
      }
    }
    return getGetTurnDiffMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.RemoveQueuedTurnRequest,
      dev.kodad.koda.v1.RemoveQueuedTurnResponse> getRemoveQueuedTurnMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RemoveQueuedTurn",
      requestType = dev.kodad.koda.v1.RemoveQueuedTurnRequest.class,
      responseType = dev.kodad.koda.v1.RemoveQueuedTurnResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.RemoveQueuedTurnRequest,
      dev.kodad.koda.v1.RemoveQueuedTurnResponse> getRemoveQueuedTurnMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.RemoveQueuedTurnRequest, dev.kodad.koda.v1.RemoveQueuedTurnResponse> getRemoveQueuedTurnMethod;
    if ((getRemoveQueuedTurnMethod = SessionServiceGrpc.getRemoveQueuedTurnMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getRemoveQueuedTurnMethod = SessionServiceGrpc.getRemoveQueuedTurnMethod) == null) {
          SessionServiceGrpc.getRemoveQueuedTurnMethod = getRemoveQueuedTurnMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.RemoveQueuedTurnRequest, dev.kodad.koda.v1.RemoveQueuedTurnResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RemoveQueuedTurn"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RemoveQueuedTurnRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.RemoveQueuedTurnResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("RemoveQueuedTurn"))
              .build();
        }
      }
    }
    return getRemoveQueuedTurnMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.WatchSessionRequest,
      dev.kodad.koda.v1.WatchSessionResponse> getWatchSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "WatchSession",
      requestType = dev.kodad.koda.v1.WatchSessionRequest.class,
      responseType = dev.kodad.koda.v1.WatchSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.WatchSessionRequest,
      dev.kodad.koda.v1.WatchSessionResponse> getWatchSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.WatchSessionRequest, dev.kodad.koda.v1.WatchSessionResponse> getWatchSessionMethod;
    if ((getWatchSessionMethod = SessionServiceGrpc.getWatchSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getWatchSessionMethod = SessionServiceGrpc.getWatchSessionMethod) == null) {
          SessionServiceGrpc.getWatchSessionMethod = getWatchSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.WatchSessionRequest, dev.kodad.koda.v1.WatchSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "WatchSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.WatchSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.WatchSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("WatchSession"))
              .build();
        }
      }
    }
    return getWatchSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListAgentProfilesRequest,
      dev.kodad.koda.v1.ListAgentProfilesResponse> getListAgentProfilesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListAgentProfiles",
      requestType = dev.kodad.koda.v1.ListAgentProfilesRequest.class,
      responseType = dev.kodad.koda.v1.ListAgentProfilesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListAgentProfilesRequest,
      dev.kodad.koda.v1.ListAgentProfilesResponse> getListAgentProfilesMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.ListAgentProfilesRequest, dev.kodad.koda.v1.ListAgentProfilesResponse> getListAgentProfilesMethod;
    if ((getListAgentProfilesMethod = SessionServiceGrpc.getListAgentProfilesMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getListAgentProfilesMethod = SessionServiceGrpc.getListAgentProfilesMethod) == null) {
          SessionServiceGrpc.getListAgentProfilesMethod = getListAgentProfilesMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.ListAgentProfilesRequest, dev.kodad.koda.v1.ListAgentProfilesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListAgentProfiles"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListAgentProfilesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.ListAgentProfilesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("ListAgentProfiles"))
              .build();
        }
      }
    }
    return getListAgentProfilesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetAgentProfileRequest,
      dev.kodad.koda.v1.GetAgentProfileResponse> getGetAgentProfileMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetAgentProfile",
      requestType = dev.kodad.koda.v1.GetAgentProfileRequest.class,
      responseType = dev.kodad.koda.v1.GetAgentProfileResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetAgentProfileRequest,
      dev.kodad.koda.v1.GetAgentProfileResponse> getGetAgentProfileMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.GetAgentProfileRequest, dev.kodad.koda.v1.GetAgentProfileResponse> getGetAgentProfileMethod;
    if ((getGetAgentProfileMethod = SessionServiceGrpc.getGetAgentProfileMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getGetAgentProfileMethod = SessionServiceGrpc.getGetAgentProfileMethod) == null) {
          SessionServiceGrpc.getGetAgentProfileMethod = getGetAgentProfileMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.GetAgentProfileRequest, dev.kodad.koda.v1.GetAgentProfileResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetAgentProfile"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetAgentProfileRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.GetAgentProfileResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("GetAgentProfile"))
              .build();
        }
      }
    }
    return getGetAgentProfileMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.kodad.koda.v1.CompactSessionRequest,
      dev.kodad.koda.v1.CompactSessionResponse> getCompactSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CompactSession",
      requestType = dev.kodad.koda.v1.CompactSessionRequest.class,
      responseType = dev.kodad.koda.v1.CompactSessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.kodad.koda.v1.CompactSessionRequest,
      dev.kodad.koda.v1.CompactSessionResponse> getCompactSessionMethod() {
    io.grpc.MethodDescriptor<dev.kodad.koda.v1.CompactSessionRequest, dev.kodad.koda.v1.CompactSessionResponse> getCompactSessionMethod;
    if ((getCompactSessionMethod = SessionServiceGrpc.getCompactSessionMethod) == null) {
      synchronized (SessionServiceGrpc.class) {
        if ((getCompactSessionMethod = SessionServiceGrpc.getCompactSessionMethod) == null) {
          SessionServiceGrpc.getCompactSessionMethod = getCompactSessionMethod =
              io.grpc.MethodDescriptor.<dev.kodad.koda.v1.CompactSessionRequest, dev.kodad.koda.v1.CompactSessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CompactSession"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CompactSessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.kodad.koda.v1.CompactSessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SessionServiceMethodDescriptorSupplier("CompactSession"))
              .build();
        }
      }
    }
    return getCompactSessionMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static SessionServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SessionServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SessionServiceStub>() {
        @java.lang.Override
        public SessionServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SessionServiceStub(channel, callOptions);
        }
      };
    return SessionServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static SessionServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SessionServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SessionServiceBlockingV2Stub>() {
        @java.lang.Override
        public SessionServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SessionServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return SessionServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static SessionServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SessionServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SessionServiceBlockingStub>() {
        @java.lang.Override
        public SessionServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SessionServiceBlockingStub(channel, callOptions);
        }
      };
    return SessionServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static SessionServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SessionServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SessionServiceFutureStub>() {
        @java.lang.Override
        public SessionServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SessionServiceFutureStub(channel, callOptions);
        }
      };
    return SessionServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Describes the service: version, capabilities, providers and tools.
     * </pre>
     */
    default void getServerInfo(dev.kodad.koda.v1.GetServerInfoRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetServerInfoResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetServerInfoMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the models a provider serves: the server's `GET /v1/models` (OpenAI-compatible and
     * Anthropic formats, every page), with their context window and output limit where the
     * server states them; the scripted provider lists its own. Answers are cached for 60 s per
     * provider. The provider's API key is used as for a turn (PERMISSION_DENIED for a key the
     * operator does not lend); a provider that fails is UNAVAILABLE with its message, one that
     * refuses the key FAILED_PRECONDITION.
     * </pre>
     */
    default void listModels(dev.kodad.koda.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Creates a session. The workspace must be an existing absolute directory.
     * </pre>
     */
    default void createSession(dev.kodad.koda.v1.CreateSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CreateSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Returns one session.
     * </pre>
     */
    default void getSession(dev.kodad.koda.v1.GetSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists sessions, newest first, optionally only those carrying given labels.
     * </pre>
     */
    default void listSessions(dev.kodad.koda.v1.ListSessionsRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListSessionsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListSessionsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Changes a session's settings (fields named by `update_mask`). Provider, approval mode,
     * loop cap and system prompt take effect at the next turn.
     * </pre>
     */
    default void updateSession(dev.kodad.koda.v1.UpdateSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UpdateSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpdateSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes a session with its history, events and file records. FAILED_PRECONDITION while
     * a turn runs.
     * </pre>
     */
    default void deleteSession(dev.kodad.koda.v1.DeleteSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.DeleteSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Creates a new session with a copy of a session's settings and history.
     * FAILED_PRECONDITION while a turn runs on the source.
     * </pre>
     */
    default void forkSession(dev.kodad.koda.v1.ForkSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ForkSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getForkSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Pages through a session's history, oldest first.
     * </pre>
     */
    default void listMessages(dev.kodad.koda.v1.ListMessagesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListMessagesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListMessagesMethod(), responseObserver);
    }

    /**
     * <pre>
     * Pages through the workspace files the session's tools created, modified or deleted,
     * oldest first.
     * </pre>
     */
    default void listFileChanges(dev.kodad.koda.v1.ListFileChangesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListFileChangesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListFileChangesMethod(), responseObserver);
    }

    /**
     * <pre>
     * Runs one turn. The first request must carry `start_turn` (else INVALID_ARGUMENT); later
     * ones may carry `approval_decision`, `loop_decision`, `user_answer`, `steer` or `cancel`.
     * A client that leaves the stream early should first `cancel`. The server streams every
     * event of the turn and closes the stream OK after `turn_ended`. A later command that cannot
     * apply (e.g. an approval another client answered first) does not end the stream: it is
     * reported as a `Notice` with NOTICE_LEVEL_WARNING. Closing the sending side is not a
     * disconnect; breaking the stream is (see `StartTurn.on_disconnect`). With replicas on one
     * PostgreSQL database, the replica that starts a turn owns the session until it ends;
     * starting a turn there on another replica is FAILED_PRECONDITION naming the owner. If the
     * owner stops renewing its lease and another replica takes the turn over (ending it
     * FAILED, error_code `owner_lost`), the old owner's stream ends ABORTED.
     * </pre>
     */
    default io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RunTurnRequest> runTurn(
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RunTurnResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getRunTurnMethod(), responseObserver);
    }

    /**
     * <pre>
     * Sends a command to the running turn of a session from any client: an approval or loop
     * decision, or a cancel. `start_turn` is INVALID_ARGUMENT here. An unknown request_id is
     * NOT_FOUND; a request already answered (the first answer wins), or no turn running or no
     * loop question open, is FAILED_PRECONDITION. With replicas, any replica takes it and
     * passes it to the one running the turn (UNAVAILABLE if that one does not answer).
     * </pre>
     */
    default void submitCommand(dev.kodad.koda.v1.SubmitCommandRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.SubmitCommandResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSubmitCommandMethod(), responseObserver);
    }

    /**
     * <pre>
     * Cancels the running turn of a session, on any replica. FAILED_PRECONDITION when no turn
     * runs.
     * </pre>
     */
    default void cancelTurn(dev.kodad.koda.v1.CancelTurnRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CancelTurnResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCancelTurnMethod(), responseObserver);
    }

    /**
     * <pre>
     * Returns the workspace and/or the history to the state just before a turn (or at a
     * checkpoint's seq). Refused while a turn runs. A file changed outside kodad since its last
     * checkpoint is not overwritten: FAILED_PRECONDITION (reason CHECKPOINT_CONFLICT, the paths
     * in the metadata) unless `force`. Recorded as `session_rewound`; UnrewindSession undoes it.
     * </pre>
     */
    default void rewindSession(dev.kodad.koda.v1.RewindSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RewindSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRewindSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Undoes the session's latest rewind: the files and messages it took back come back.
     * FAILED_PRECONDITION when the latest rewind is undone already (or there is none).
     * </pre>
     */
    default void unrewindSession(dev.kodad.koda.v1.UnrewindSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UnrewindSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUnrewindSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * The unified diff of everything a turn changed in the workspace (bash included), from its
     * checkpoints; NOT_FOUND for a turn that changed nothing or is not the session's.
     * </pre>
     */
    default void getTurnDiff(dev.kodad.koda.v1.GetTurnDiffRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetTurnDiffResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetTurnDiffMethod(), responseObserver);
    }

    /**
     * <pre>
     * Takes a queued turn off the session's queue before it starts (`queued_turn_removed`);
     * NOT_FOUND when it is not queued (any more: it may have started).
     * </pre>
     */
    default void removeQueuedTurn(dev.kodad.koda.v1.RemoveQueuedTurnRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RemoveQueuedTurnResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRemoveQueuedTurnMethod(), responseObserver);
    }

    /**
     * <pre>
     * Replays the stored events of a session with seq &gt; `after_seq`, then follows live events
     * until the client cancels. No event is lost or repeated between replay and live. Requests
     * still waiting for an answer (`approval_requested`, `loop_cap_reached`) whose seq is not
     * above `after_seq` are sent first, so a client that attaches late can answer them; seqs in
     * the stream still only increase. With replicas, any replica follows (and re-sends the
     * open requests of) a turn another one runs.
     * </pre>
     */
    default void watchSession(dev.kodad.koda.v1.WatchSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.WatchSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getWatchSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the agent profiles a session on a workspace can use: the built-in `default`, the
     * server's profile directory, and the workspace's `.kodad/agents/`.
     * </pre>
     */
    default void listAgentProfiles(dev.kodad.koda.v1.ListAgentProfilesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListAgentProfilesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListAgentProfilesMethod(), responseObserver);
    }

    /**
     * <pre>
     * Returns one agent profile. NOT_FOUND when there is none of that name; FAILED_PRECONDITION
     * when its file cannot be read.
     * </pre>
     */
    default void getAgentProfile(dev.kodad.koda.v1.GetAgentProfileRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetAgentProfileResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetAgentProfileMethod(), responseObserver);
    }

    /**
     * <pre>
     * Compacts a session's history now: all turns but the last are summarised by the session's
     * provider into a MESSAGE_ROLE_SUMMARY message (every message stays stored). Runs as a turn
     * of its own, whose events WatchSession shows; returns when it ended. FAILED_PRECONDITION
     * while a turn runs.
     * </pre>
     */
    default void compactSession(dev.kodad.koda.v1.CompactSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CompactSessionResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCompactSessionMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service SessionService.
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public static abstract class SessionServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return SessionServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service SessionService.
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public static final class SessionServiceStub
      extends io.grpc.stub.AbstractAsyncStub<SessionServiceStub> {
    private SessionServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SessionServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SessionServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the service: version, capabilities, providers and tools.
     * </pre>
     */
    public void getServerInfo(dev.kodad.koda.v1.GetServerInfoRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetServerInfoResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetServerInfoMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists the models a provider serves: the server's `GET /v1/models` (OpenAI-compatible and
     * Anthropic formats, every page), with their context window and output limit where the
     * server states them; the scripted provider lists its own. Answers are cached for 60 s per
     * provider. The provider's API key is used as for a turn (PERMISSION_DENIED for a key the
     * operator does not lend); a provider that fails is UNAVAILABLE with its message, one that
     * refuses the key FAILED_PRECONDITION.
     * </pre>
     */
    public void listModels(dev.kodad.koda.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Creates a session. The workspace must be an existing absolute directory.
     * </pre>
     */
    public void createSession(dev.kodad.koda.v1.CreateSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CreateSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Returns one session.
     * </pre>
     */
    public void getSession(dev.kodad.koda.v1.GetSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists sessions, newest first, optionally only those carrying given labels.
     * </pre>
     */
    public void listSessions(dev.kodad.koda.v1.ListSessionsRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListSessionsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListSessionsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Changes a session's settings (fields named by `update_mask`). Provider, approval mode,
     * loop cap and system prompt take effect at the next turn.
     * </pre>
     */
    public void updateSession(dev.kodad.koda.v1.UpdateSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UpdateSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpdateSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes a session with its history, events and file records. FAILED_PRECONDITION while
     * a turn runs.
     * </pre>
     */
    public void deleteSession(dev.kodad.koda.v1.DeleteSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.DeleteSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Creates a new session with a copy of a session's settings and history.
     * FAILED_PRECONDITION while a turn runs on the source.
     * </pre>
     */
    public void forkSession(dev.kodad.koda.v1.ForkSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ForkSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getForkSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Pages through a session's history, oldest first.
     * </pre>
     */
    public void listMessages(dev.kodad.koda.v1.ListMessagesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListMessagesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListMessagesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Pages through the workspace files the session's tools created, modified or deleted,
     * oldest first.
     * </pre>
     */
    public void listFileChanges(dev.kodad.koda.v1.ListFileChangesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListFileChangesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListFileChangesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Runs one turn. The first request must carry `start_turn` (else INVALID_ARGUMENT); later
     * ones may carry `approval_decision`, `loop_decision`, `user_answer`, `steer` or `cancel`.
     * A client that leaves the stream early should first `cancel`. The server streams every
     * event of the turn and closes the stream OK after `turn_ended`. A later command that cannot
     * apply (e.g. an approval another client answered first) does not end the stream: it is
     * reported as a `Notice` with NOTICE_LEVEL_WARNING. Closing the sending side is not a
     * disconnect; breaking the stream is (see `StartTurn.on_disconnect`). With replicas on one
     * PostgreSQL database, the replica that starts a turn owns the session until it ends;
     * starting a turn there on another replica is FAILED_PRECONDITION naming the owner. If the
     * owner stops renewing its lease and another replica takes the turn over (ending it
     * FAILED, error_code `owner_lost`), the old owner's stream ends ABORTED.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RunTurnRequest> runTurn(
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RunTurnResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getRunTurnMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * Sends a command to the running turn of a session from any client: an approval or loop
     * decision, or a cancel. `start_turn` is INVALID_ARGUMENT here. An unknown request_id is
     * NOT_FOUND; a request already answered (the first answer wins), or no turn running or no
     * loop question open, is FAILED_PRECONDITION. With replicas, any replica takes it and
     * passes it to the one running the turn (UNAVAILABLE if that one does not answer).
     * </pre>
     */
    public void submitCommand(dev.kodad.koda.v1.SubmitCommandRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.SubmitCommandResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSubmitCommandMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Cancels the running turn of a session, on any replica. FAILED_PRECONDITION when no turn
     * runs.
     * </pre>
     */
    public void cancelTurn(dev.kodad.koda.v1.CancelTurnRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CancelTurnResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCancelTurnMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Returns the workspace and/or the history to the state just before a turn (or at a
     * checkpoint's seq). Refused while a turn runs. A file changed outside kodad since its last
     * checkpoint is not overwritten: FAILED_PRECONDITION (reason CHECKPOINT_CONFLICT, the paths
     * in the metadata) unless `force`. Recorded as `session_rewound`; UnrewindSession undoes it.
     * </pre>
     */
    public void rewindSession(dev.kodad.koda.v1.RewindSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RewindSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRewindSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Undoes the session's latest rewind: the files and messages it took back come back.
     * FAILED_PRECONDITION when the latest rewind is undone already (or there is none).
     * </pre>
     */
    public void unrewindSession(dev.kodad.koda.v1.UnrewindSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UnrewindSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUnrewindSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * The unified diff of everything a turn changed in the workspace (bash included), from its
     * checkpoints; NOT_FOUND for a turn that changed nothing or is not the session's.
     * </pre>
     */
    public void getTurnDiff(dev.kodad.koda.v1.GetTurnDiffRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetTurnDiffResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetTurnDiffMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Takes a queued turn off the session's queue before it starts (`queued_turn_removed`);
     * NOT_FOUND when it is not queued (any more: it may have started).
     * </pre>
     */
    public void removeQueuedTurn(dev.kodad.koda.v1.RemoveQueuedTurnRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RemoveQueuedTurnResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRemoveQueuedTurnMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Replays the stored events of a session with seq &gt; `after_seq`, then follows live events
     * until the client cancels. No event is lost or repeated between replay and live. Requests
     * still waiting for an answer (`approval_requested`, `loop_cap_reached`) whose seq is not
     * above `after_seq` are sent first, so a client that attaches late can answer them; seqs in
     * the stream still only increase. With replicas, any replica follows (and re-sends the
     * open requests of) a turn another one runs.
     * </pre>
     */
    public void watchSession(dev.kodad.koda.v1.WatchSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.WatchSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getWatchSessionMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists the agent profiles a session on a workspace can use: the built-in `default`, the
     * server's profile directory, and the workspace's `.kodad/agents/`.
     * </pre>
     */
    public void listAgentProfiles(dev.kodad.koda.v1.ListAgentProfilesRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListAgentProfilesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListAgentProfilesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Returns one agent profile. NOT_FOUND when there is none of that name; FAILED_PRECONDITION
     * when its file cannot be read.
     * </pre>
     */
    public void getAgentProfile(dev.kodad.koda.v1.GetAgentProfileRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetAgentProfileResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetAgentProfileMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Compacts a session's history now: all turns but the last are summarised by the session's
     * provider into a MESSAGE_ROLE_SUMMARY message (every message stays stored). Runs as a turn
     * of its own, whose events WatchSession shows; returns when it ended. FAILED_PRECONDITION
     * while a turn runs.
     * </pre>
     */
    public void compactSession(dev.kodad.koda.v1.CompactSessionRequest request,
        io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CompactSessionResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCompactSessionMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service SessionService.
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public static final class SessionServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<SessionServiceBlockingV2Stub> {
    private SessionServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SessionServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SessionServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the service: version, capabilities, providers and tools.
     * </pre>
     */
    public dev.kodad.koda.v1.GetServerInfoResponse getServerInfo(dev.kodad.koda.v1.GetServerInfoRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetServerInfoMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the models a provider serves: the server's `GET /v1/models` (OpenAI-compatible and
     * Anthropic formats, every page), with their context window and output limit where the
     * server states them; the scripted provider lists its own. Answers are cached for 60 s per
     * provider. The provider's API key is used as for a turn (PERMISSION_DENIED for a key the
     * operator does not lend); a provider that fails is UNAVAILABLE with its message, one that
     * refuses the key FAILED_PRECONDITION.
     * </pre>
     */
    public dev.kodad.koda.v1.ListModelsResponse listModels(dev.kodad.koda.v1.ListModelsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates a session. The workspace must be an existing absolute directory.
     * </pre>
     */
    public dev.kodad.koda.v1.CreateSessionResponse createSession(dev.kodad.koda.v1.CreateSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCreateSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns one session.
     * </pre>
     */
    public dev.kodad.koda.v1.GetSessionResponse getSession(dev.kodad.koda.v1.GetSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists sessions, newest first, optionally only those carrying given labels.
     * </pre>
     */
    public dev.kodad.koda.v1.ListSessionsResponse listSessions(dev.kodad.koda.v1.ListSessionsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListSessionsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Changes a session's settings (fields named by `update_mask`). Provider, approval mode,
     * loop cap and system prompt take effect at the next turn.
     * </pre>
     */
    public dev.kodad.koda.v1.UpdateSessionResponse updateSession(dev.kodad.koda.v1.UpdateSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getUpdateSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes a session with its history, events and file records. FAILED_PRECONDITION while
     * a turn runs.
     * </pre>
     */
    public dev.kodad.koda.v1.DeleteSessionResponse deleteSession(dev.kodad.koda.v1.DeleteSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates a new session with a copy of a session's settings and history.
     * FAILED_PRECONDITION while a turn runs on the source.
     * </pre>
     */
    public dev.kodad.koda.v1.ForkSessionResponse forkSession(dev.kodad.koda.v1.ForkSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getForkSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Pages through a session's history, oldest first.
     * </pre>
     */
    public dev.kodad.koda.v1.ListMessagesResponse listMessages(dev.kodad.koda.v1.ListMessagesRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListMessagesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Pages through the workspace files the session's tools created, modified or deleted,
     * oldest first.
     * </pre>
     */
    public dev.kodad.koda.v1.ListFileChangesResponse listFileChanges(dev.kodad.koda.v1.ListFileChangesRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListFileChangesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Runs one turn. The first request must carry `start_turn` (else INVALID_ARGUMENT); later
     * ones may carry `approval_decision`, `loop_decision`, `user_answer`, `steer` or `cancel`.
     * A client that leaves the stream early should first `cancel`. The server streams every
     * event of the turn and closes the stream OK after `turn_ended`. A later command that cannot
     * apply (e.g. an approval another client answered first) does not end the stream: it is
     * reported as a `Notice` with NOTICE_LEVEL_WARNING. Closing the sending side is not a
     * disconnect; breaking the stream is (see `StartTurn.on_disconnect`). With replicas on one
     * PostgreSQL database, the replica that starts a turn owns the session until it ends;
     * starting a turn there on another replica is FAILED_PRECONDITION naming the owner. If the
     * owner stops renewing its lease and another replica takes the turn over (ending it
     * FAILED, error_code `owner_lost`), the old owner's stream ends ABORTED.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<dev.kodad.koda.v1.RunTurnRequest, dev.kodad.koda.v1.RunTurnResponse>
        runTurn() {
      return io.grpc.stub.ClientCalls.blockingBidiStreamingCall(
          getChannel(), getRunTurnMethod(), getCallOptions());
    }

    /**
     * <pre>
     * Sends a command to the running turn of a session from any client: an approval or loop
     * decision, or a cancel. `start_turn` is INVALID_ARGUMENT here. An unknown request_id is
     * NOT_FOUND; a request already answered (the first answer wins), or no turn running or no
     * loop question open, is FAILED_PRECONDITION. With replicas, any replica takes it and
     * passes it to the one running the turn (UNAVAILABLE if that one does not answer).
     * </pre>
     */
    public dev.kodad.koda.v1.SubmitCommandResponse submitCommand(dev.kodad.koda.v1.SubmitCommandRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getSubmitCommandMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Cancels the running turn of a session, on any replica. FAILED_PRECONDITION when no turn
     * runs.
     * </pre>
     */
    public dev.kodad.koda.v1.CancelTurnResponse cancelTurn(dev.kodad.koda.v1.CancelTurnRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCancelTurnMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns the workspace and/or the history to the state just before a turn (or at a
     * checkpoint's seq). Refused while a turn runs. A file changed outside kodad since its last
     * checkpoint is not overwritten: FAILED_PRECONDITION (reason CHECKPOINT_CONFLICT, the paths
     * in the metadata) unless `force`. Recorded as `session_rewound`; UnrewindSession undoes it.
     * </pre>
     */
    public dev.kodad.koda.v1.RewindSessionResponse rewindSession(dev.kodad.koda.v1.RewindSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRewindSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Undoes the session's latest rewind: the files and messages it took back come back.
     * FAILED_PRECONDITION when the latest rewind is undone already (or there is none).
     * </pre>
     */
    public dev.kodad.koda.v1.UnrewindSessionResponse unrewindSession(dev.kodad.koda.v1.UnrewindSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getUnrewindSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The unified diff of everything a turn changed in the workspace (bash included), from its
     * checkpoints; NOT_FOUND for a turn that changed nothing or is not the session's.
     * </pre>
     */
    public dev.kodad.koda.v1.GetTurnDiffResponse getTurnDiff(dev.kodad.koda.v1.GetTurnDiffRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetTurnDiffMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Takes a queued turn off the session's queue before it starts (`queued_turn_removed`);
     * NOT_FOUND when it is not queued (any more: it may have started).
     * </pre>
     */
    public dev.kodad.koda.v1.RemoveQueuedTurnResponse removeQueuedTurn(dev.kodad.koda.v1.RemoveQueuedTurnRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRemoveQueuedTurnMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Replays the stored events of a session with seq &gt; `after_seq`, then follows live events
     * until the client cancels. No event is lost or repeated between replay and live. Requests
     * still waiting for an answer (`approval_requested`, `loop_cap_reached`) whose seq is not
     * above `after_seq` are sent first, so a client that attaches late can answer them; seqs in
     * the stream still only increase. With replicas, any replica follows (and re-sends the
     * open requests of) a turn another one runs.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.kodad.koda.v1.WatchSessionResponse>
        watchSession(dev.kodad.koda.v1.WatchSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getWatchSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the agent profiles a session on a workspace can use: the built-in `default`, the
     * server's profile directory, and the workspace's `.kodad/agents/`.
     * </pre>
     */
    public dev.kodad.koda.v1.ListAgentProfilesResponse listAgentProfiles(dev.kodad.koda.v1.ListAgentProfilesRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListAgentProfilesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns one agent profile. NOT_FOUND when there is none of that name; FAILED_PRECONDITION
     * when its file cannot be read.
     * </pre>
     */
    public dev.kodad.koda.v1.GetAgentProfileResponse getAgentProfile(dev.kodad.koda.v1.GetAgentProfileRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetAgentProfileMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Compacts a session's history now: all turns but the last are summarised by the session's
     * provider into a MESSAGE_ROLE_SUMMARY message (every message stays stored). Runs as a turn
     * of its own, whose events WatchSession shows; returns when it ended. FAILED_PRECONDITION
     * while a turn runs.
     * </pre>
     */
    public dev.kodad.koda.v1.CompactSessionResponse compactSession(dev.kodad.koda.v1.CompactSessionRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCompactSessionMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service SessionService.
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public static final class SessionServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<SessionServiceBlockingStub> {
    private SessionServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SessionServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SessionServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the service: version, capabilities, providers and tools.
     * </pre>
     */
    public dev.kodad.koda.v1.GetServerInfoResponse getServerInfo(dev.kodad.koda.v1.GetServerInfoRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetServerInfoMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the models a provider serves: the server's `GET /v1/models` (OpenAI-compatible and
     * Anthropic formats, every page), with their context window and output limit where the
     * server states them; the scripted provider lists its own. Answers are cached for 60 s per
     * provider. The provider's API key is used as for a turn (PERMISSION_DENIED for a key the
     * operator does not lend); a provider that fails is UNAVAILABLE with its message, one that
     * refuses the key FAILED_PRECONDITION.
     * </pre>
     */
    public dev.kodad.koda.v1.ListModelsResponse listModels(dev.kodad.koda.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates a session. The workspace must be an existing absolute directory.
     * </pre>
     */
    public dev.kodad.koda.v1.CreateSessionResponse createSession(dev.kodad.koda.v1.CreateSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns one session.
     * </pre>
     */
    public dev.kodad.koda.v1.GetSessionResponse getSession(dev.kodad.koda.v1.GetSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists sessions, newest first, optionally only those carrying given labels.
     * </pre>
     */
    public dev.kodad.koda.v1.ListSessionsResponse listSessions(dev.kodad.koda.v1.ListSessionsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListSessionsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Changes a session's settings (fields named by `update_mask`). Provider, approval mode,
     * loop cap and system prompt take effect at the next turn.
     * </pre>
     */
    public dev.kodad.koda.v1.UpdateSessionResponse updateSession(dev.kodad.koda.v1.UpdateSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpdateSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes a session with its history, events and file records. FAILED_PRECONDITION while
     * a turn runs.
     * </pre>
     */
    public dev.kodad.koda.v1.DeleteSessionResponse deleteSession(dev.kodad.koda.v1.DeleteSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates a new session with a copy of a session's settings and history.
     * FAILED_PRECONDITION while a turn runs on the source.
     * </pre>
     */
    public dev.kodad.koda.v1.ForkSessionResponse forkSession(dev.kodad.koda.v1.ForkSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getForkSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Pages through a session's history, oldest first.
     * </pre>
     */
    public dev.kodad.koda.v1.ListMessagesResponse listMessages(dev.kodad.koda.v1.ListMessagesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListMessagesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Pages through the workspace files the session's tools created, modified or deleted,
     * oldest first.
     * </pre>
     */
    public dev.kodad.koda.v1.ListFileChangesResponse listFileChanges(dev.kodad.koda.v1.ListFileChangesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListFileChangesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sends a command to the running turn of a session from any client: an approval or loop
     * decision, or a cancel. `start_turn` is INVALID_ARGUMENT here. An unknown request_id is
     * NOT_FOUND; a request already answered (the first answer wins), or no turn running or no
     * loop question open, is FAILED_PRECONDITION. With replicas, any replica takes it and
     * passes it to the one running the turn (UNAVAILABLE if that one does not answer).
     * </pre>
     */
    public dev.kodad.koda.v1.SubmitCommandResponse submitCommand(dev.kodad.koda.v1.SubmitCommandRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSubmitCommandMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Cancels the running turn of a session, on any replica. FAILED_PRECONDITION when no turn
     * runs.
     * </pre>
     */
    public dev.kodad.koda.v1.CancelTurnResponse cancelTurn(dev.kodad.koda.v1.CancelTurnRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCancelTurnMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns the workspace and/or the history to the state just before a turn (or at a
     * checkpoint's seq). Refused while a turn runs. A file changed outside kodad since its last
     * checkpoint is not overwritten: FAILED_PRECONDITION (reason CHECKPOINT_CONFLICT, the paths
     * in the metadata) unless `force`. Recorded as `session_rewound`; UnrewindSession undoes it.
     * </pre>
     */
    public dev.kodad.koda.v1.RewindSessionResponse rewindSession(dev.kodad.koda.v1.RewindSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRewindSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Undoes the session's latest rewind: the files and messages it took back come back.
     * FAILED_PRECONDITION when the latest rewind is undone already (or there is none).
     * </pre>
     */
    public dev.kodad.koda.v1.UnrewindSessionResponse unrewindSession(dev.kodad.koda.v1.UnrewindSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUnrewindSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The unified diff of everything a turn changed in the workspace (bash included), from its
     * checkpoints; NOT_FOUND for a turn that changed nothing or is not the session's.
     * </pre>
     */
    public dev.kodad.koda.v1.GetTurnDiffResponse getTurnDiff(dev.kodad.koda.v1.GetTurnDiffRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetTurnDiffMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Takes a queued turn off the session's queue before it starts (`queued_turn_removed`);
     * NOT_FOUND when it is not queued (any more: it may have started).
     * </pre>
     */
    public dev.kodad.koda.v1.RemoveQueuedTurnResponse removeQueuedTurn(dev.kodad.koda.v1.RemoveQueuedTurnRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRemoveQueuedTurnMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Replays the stored events of a session with seq &gt; `after_seq`, then follows live events
     * until the client cancels. No event is lost or repeated between replay and live. Requests
     * still waiting for an answer (`approval_requested`, `loop_cap_reached`) whose seq is not
     * above `after_seq` are sent first, so a client that attaches late can answer them; seqs in
     * the stream still only increase. With replicas, any replica follows (and re-sends the
     * open requests of) a turn another one runs.
     * </pre>
     */
    public java.util.Iterator<dev.kodad.koda.v1.WatchSessionResponse> watchSession(
        dev.kodad.koda.v1.WatchSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getWatchSessionMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the agent profiles a session on a workspace can use: the built-in `default`, the
     * server's profile directory, and the workspace's `.kodad/agents/`.
     * </pre>
     */
    public dev.kodad.koda.v1.ListAgentProfilesResponse listAgentProfiles(dev.kodad.koda.v1.ListAgentProfilesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListAgentProfilesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Returns one agent profile. NOT_FOUND when there is none of that name; FAILED_PRECONDITION
     * when its file cannot be read.
     * </pre>
     */
    public dev.kodad.koda.v1.GetAgentProfileResponse getAgentProfile(dev.kodad.koda.v1.GetAgentProfileRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetAgentProfileMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Compacts a session's history now: all turns but the last are summarised by the session's
     * provider into a MESSAGE_ROLE_SUMMARY message (every message stays stored). Runs as a turn
     * of its own, whose events WatchSession shows; returns when it ended. FAILED_PRECONDITION
     * while a turn runs.
     * </pre>
     */
    public dev.kodad.koda.v1.CompactSessionResponse compactSession(dev.kodad.koda.v1.CompactSessionRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCompactSessionMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service SessionService.
   * <pre>
   * Keeps coding-agent sessions and runs their turns.
   * Errors: an unknown session is NOT_FOUND; a malformed request is INVALID_ARGUMENT with a
   * message naming the field; a turn already running is FAILED_PRECONDITION naming the turn;
   * limits are RESOURCE_EXHAUSTED. Provider failures are not RPC errors: they end the turn with
   * `TurnEnded{reason: TURN_END_REASON_FAILED}` and the stream closes OK.
   * Every error status kodad sends carries one google.rpc.ErrorInfo in its details
   * (`grpc-status-details-bin`), domain "kodad", for clients to branch on instead of the
   * message. Its reason is one of these, else the status code's name (e.g. INVALID_ARGUMENT):
   *   TURN_ALREADY_RUNNING      FAILED_PRECONDITION; metadata session_id, turn_id (running)
   *   NO_RUNNING_TURN           FAILED_PRECONDITION; metadata session_id
   *   TURN_NOT_RUNNING          FAILED_PRECONDITION: the turn_id named is not the running turn;
   *                             metadata session_id, turn_id, running_turn_id
   *   REQUEST_ALREADY_ANSWERED  FAILED_PRECONDITION; metadata request_id
   *   REQUEST_NOT_FOUND         NOT_FOUND: no such open request in the turn; metadata request_id
   *   SESSION_NOT_FOUND         NOT_FOUND (also another tenant's session); metadata session_id
   *   LIMIT_REACHED             RESOURCE_EXHAUSTED; metadata limit (its name, e.g.
   *                             turns_per_tenant) and value
   *   LEASE_LOST                ABORTED: another replica took the session over; metadata
   *                             session_id
   *   CHECKPOINT_CONFLICT       FAILED_PRECONDITION: a rewind would overwrite files changed
   *                             outside kodad; metadata session_id, paths (comma-separated)
   *   BUDGET_EXHAUSTED          FAILED_PRECONDITION: the session's token_budget or
   *                             cost_budget is spent; metadata session_id, budget ("tokens"
   *                             or "cost")
   * </pre>
   */
  public static final class SessionServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<SessionServiceFutureStub> {
    private SessionServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SessionServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SessionServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the service: version, capabilities, providers and tools.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.GetServerInfoResponse> getServerInfo(
        dev.kodad.koda.v1.GetServerInfoRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetServerInfoMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the models a provider serves: the server's `GET /v1/models` (OpenAI-compatible and
     * Anthropic formats, every page), with their context window and output limit where the
     * server states them; the scripted provider lists its own. Answers are cached for 60 s per
     * provider. The provider's API key is used as for a turn (PERMISSION_DENIED for a key the
     * operator does not lend); a provider that fails is UNAVAILABLE with its message, one that
     * refuses the key FAILED_PRECONDITION.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ListModelsResponse> listModels(
        dev.kodad.koda.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Creates a session. The workspace must be an existing absolute directory.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.CreateSessionResponse> createSession(
        dev.kodad.koda.v1.CreateSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Returns one session.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.GetSessionResponse> getSession(
        dev.kodad.koda.v1.GetSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists sessions, newest first, optionally only those carrying given labels.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ListSessionsResponse> listSessions(
        dev.kodad.koda.v1.ListSessionsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListSessionsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Changes a session's settings (fields named by `update_mask`). Provider, approval mode,
     * loop cap and system prompt take effect at the next turn.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.UpdateSessionResponse> updateSession(
        dev.kodad.koda.v1.UpdateSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpdateSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes a session with its history, events and file records. FAILED_PRECONDITION while
     * a turn runs.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.DeleteSessionResponse> deleteSession(
        dev.kodad.koda.v1.DeleteSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Creates a new session with a copy of a session's settings and history.
     * FAILED_PRECONDITION while a turn runs on the source.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ForkSessionResponse> forkSession(
        dev.kodad.koda.v1.ForkSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getForkSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Pages through a session's history, oldest first.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ListMessagesResponse> listMessages(
        dev.kodad.koda.v1.ListMessagesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListMessagesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Pages through the workspace files the session's tools created, modified or deleted,
     * oldest first.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ListFileChangesResponse> listFileChanges(
        dev.kodad.koda.v1.ListFileChangesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListFileChangesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Sends a command to the running turn of a session from any client: an approval or loop
     * decision, or a cancel. `start_turn` is INVALID_ARGUMENT here. An unknown request_id is
     * NOT_FOUND; a request already answered (the first answer wins), or no turn running or no
     * loop question open, is FAILED_PRECONDITION. With replicas, any replica takes it and
     * passes it to the one running the turn (UNAVAILABLE if that one does not answer).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.SubmitCommandResponse> submitCommand(
        dev.kodad.koda.v1.SubmitCommandRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSubmitCommandMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Cancels the running turn of a session, on any replica. FAILED_PRECONDITION when no turn
     * runs.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.CancelTurnResponse> cancelTurn(
        dev.kodad.koda.v1.CancelTurnRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCancelTurnMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Returns the workspace and/or the history to the state just before a turn (or at a
     * checkpoint's seq). Refused while a turn runs. A file changed outside kodad since its last
     * checkpoint is not overwritten: FAILED_PRECONDITION (reason CHECKPOINT_CONFLICT, the paths
     * in the metadata) unless `force`. Recorded as `session_rewound`; UnrewindSession undoes it.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.RewindSessionResponse> rewindSession(
        dev.kodad.koda.v1.RewindSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRewindSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Undoes the session's latest rewind: the files and messages it took back come back.
     * FAILED_PRECONDITION when the latest rewind is undone already (or there is none).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.UnrewindSessionResponse> unrewindSession(
        dev.kodad.koda.v1.UnrewindSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUnrewindSessionMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * The unified diff of everything a turn changed in the workspace (bash included), from its
     * checkpoints; NOT_FOUND for a turn that changed nothing or is not the session's.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.GetTurnDiffResponse> getTurnDiff(
        dev.kodad.koda.v1.GetTurnDiffRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetTurnDiffMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Takes a queued turn off the session's queue before it starts (`queued_turn_removed`);
     * NOT_FOUND when it is not queued (any more: it may have started).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.RemoveQueuedTurnResponse> removeQueuedTurn(
        dev.kodad.koda.v1.RemoveQueuedTurnRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRemoveQueuedTurnMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the agent profiles a session on a workspace can use: the built-in `default`, the
     * server's profile directory, and the workspace's `.kodad/agents/`.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.ListAgentProfilesResponse> listAgentProfiles(
        dev.kodad.koda.v1.ListAgentProfilesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListAgentProfilesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Returns one agent profile. NOT_FOUND when there is none of that name; FAILED_PRECONDITION
     * when its file cannot be read.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.GetAgentProfileResponse> getAgentProfile(
        dev.kodad.koda.v1.GetAgentProfileRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetAgentProfileMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Compacts a session's history now: all turns but the last are summarised by the session's
     * provider into a MESSAGE_ROLE_SUMMARY message (every message stays stored). Runs as a turn
     * of its own, whose events WatchSession shows; returns when it ended. FAILED_PRECONDITION
     * while a turn runs.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.kodad.koda.v1.CompactSessionResponse> compactSession(
        dev.kodad.koda.v1.CompactSessionRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCompactSessionMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET_SERVER_INFO = 0;
  private static final int METHODID_LIST_MODELS = 1;
  private static final int METHODID_CREATE_SESSION = 2;
  private static final int METHODID_GET_SESSION = 3;
  private static final int METHODID_LIST_SESSIONS = 4;
  private static final int METHODID_UPDATE_SESSION = 5;
  private static final int METHODID_DELETE_SESSION = 6;
  private static final int METHODID_FORK_SESSION = 7;
  private static final int METHODID_LIST_MESSAGES = 8;
  private static final int METHODID_LIST_FILE_CHANGES = 9;
  private static final int METHODID_SUBMIT_COMMAND = 10;
  private static final int METHODID_CANCEL_TURN = 11;
  private static final int METHODID_REWIND_SESSION = 12;
  private static final int METHODID_UNREWIND_SESSION = 13;
  private static final int METHODID_GET_TURN_DIFF = 14;
  private static final int METHODID_REMOVE_QUEUED_TURN = 15;
  private static final int METHODID_WATCH_SESSION = 16;
  private static final int METHODID_LIST_AGENT_PROFILES = 17;
  private static final int METHODID_GET_AGENT_PROFILE = 18;
  private static final int METHODID_COMPACT_SESSION = 19;
  private static final int METHODID_RUN_TURN = 20;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_GET_SERVER_INFO:
          serviceImpl.getServerInfo((dev.kodad.koda.v1.GetServerInfoRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetServerInfoResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((dev.kodad.koda.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListModelsResponse>) responseObserver);
          break;
        case METHODID_CREATE_SESSION:
          serviceImpl.createSession((dev.kodad.koda.v1.CreateSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CreateSessionResponse>) responseObserver);
          break;
        case METHODID_GET_SESSION:
          serviceImpl.getSession((dev.kodad.koda.v1.GetSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetSessionResponse>) responseObserver);
          break;
        case METHODID_LIST_SESSIONS:
          serviceImpl.listSessions((dev.kodad.koda.v1.ListSessionsRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListSessionsResponse>) responseObserver);
          break;
        case METHODID_UPDATE_SESSION:
          serviceImpl.updateSession((dev.kodad.koda.v1.UpdateSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UpdateSessionResponse>) responseObserver);
          break;
        case METHODID_DELETE_SESSION:
          serviceImpl.deleteSession((dev.kodad.koda.v1.DeleteSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.DeleteSessionResponse>) responseObserver);
          break;
        case METHODID_FORK_SESSION:
          serviceImpl.forkSession((dev.kodad.koda.v1.ForkSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ForkSessionResponse>) responseObserver);
          break;
        case METHODID_LIST_MESSAGES:
          serviceImpl.listMessages((dev.kodad.koda.v1.ListMessagesRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListMessagesResponse>) responseObserver);
          break;
        case METHODID_LIST_FILE_CHANGES:
          serviceImpl.listFileChanges((dev.kodad.koda.v1.ListFileChangesRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListFileChangesResponse>) responseObserver);
          break;
        case METHODID_SUBMIT_COMMAND:
          serviceImpl.submitCommand((dev.kodad.koda.v1.SubmitCommandRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.SubmitCommandResponse>) responseObserver);
          break;
        case METHODID_CANCEL_TURN:
          serviceImpl.cancelTurn((dev.kodad.koda.v1.CancelTurnRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CancelTurnResponse>) responseObserver);
          break;
        case METHODID_REWIND_SESSION:
          serviceImpl.rewindSession((dev.kodad.koda.v1.RewindSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RewindSessionResponse>) responseObserver);
          break;
        case METHODID_UNREWIND_SESSION:
          serviceImpl.unrewindSession((dev.kodad.koda.v1.UnrewindSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.UnrewindSessionResponse>) responseObserver);
          break;
        case METHODID_GET_TURN_DIFF:
          serviceImpl.getTurnDiff((dev.kodad.koda.v1.GetTurnDiffRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetTurnDiffResponse>) responseObserver);
          break;
        case METHODID_REMOVE_QUEUED_TURN:
          serviceImpl.removeQueuedTurn((dev.kodad.koda.v1.RemoveQueuedTurnRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RemoveQueuedTurnResponse>) responseObserver);
          break;
        case METHODID_WATCH_SESSION:
          serviceImpl.watchSession((dev.kodad.koda.v1.WatchSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.WatchSessionResponse>) responseObserver);
          break;
        case METHODID_LIST_AGENT_PROFILES:
          serviceImpl.listAgentProfiles((dev.kodad.koda.v1.ListAgentProfilesRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.ListAgentProfilesResponse>) responseObserver);
          break;
        case METHODID_GET_AGENT_PROFILE:
          serviceImpl.getAgentProfile((dev.kodad.koda.v1.GetAgentProfileRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.GetAgentProfileResponse>) responseObserver);
          break;
        case METHODID_COMPACT_SESSION:
          serviceImpl.compactSession((dev.kodad.koda.v1.CompactSessionRequest) request,
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.CompactSessionResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_RUN_TURN:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.runTurn(
              (io.grpc.stub.StreamObserver<dev.kodad.koda.v1.RunTurnResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getGetServerInfoMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.GetServerInfoRequest,
              dev.kodad.koda.v1.GetServerInfoResponse>(
                service, METHODID_GET_SERVER_INFO)))
        .addMethod(
          getListModelsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ListModelsRequest,
              dev.kodad.koda.v1.ListModelsResponse>(
                service, METHODID_LIST_MODELS)))
        .addMethod(
          getCreateSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.CreateSessionRequest,
              dev.kodad.koda.v1.CreateSessionResponse>(
                service, METHODID_CREATE_SESSION)))
        .addMethod(
          getGetSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.GetSessionRequest,
              dev.kodad.koda.v1.GetSessionResponse>(
                service, METHODID_GET_SESSION)))
        .addMethod(
          getListSessionsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ListSessionsRequest,
              dev.kodad.koda.v1.ListSessionsResponse>(
                service, METHODID_LIST_SESSIONS)))
        .addMethod(
          getUpdateSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.UpdateSessionRequest,
              dev.kodad.koda.v1.UpdateSessionResponse>(
                service, METHODID_UPDATE_SESSION)))
        .addMethod(
          getDeleteSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.DeleteSessionRequest,
              dev.kodad.koda.v1.DeleteSessionResponse>(
                service, METHODID_DELETE_SESSION)))
        .addMethod(
          getForkSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ForkSessionRequest,
              dev.kodad.koda.v1.ForkSessionResponse>(
                service, METHODID_FORK_SESSION)))
        .addMethod(
          getListMessagesMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ListMessagesRequest,
              dev.kodad.koda.v1.ListMessagesResponse>(
                service, METHODID_LIST_MESSAGES)))
        .addMethod(
          getListFileChangesMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ListFileChangesRequest,
              dev.kodad.koda.v1.ListFileChangesResponse>(
                service, METHODID_LIST_FILE_CHANGES)))
        .addMethod(
          getRunTurnMethod(),
          io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
            new MethodHandlers<
              dev.kodad.koda.v1.RunTurnRequest,
              dev.kodad.koda.v1.RunTurnResponse>(
                service, METHODID_RUN_TURN)))
        .addMethod(
          getSubmitCommandMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.SubmitCommandRequest,
              dev.kodad.koda.v1.SubmitCommandResponse>(
                service, METHODID_SUBMIT_COMMAND)))
        .addMethod(
          getCancelTurnMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.CancelTurnRequest,
              dev.kodad.koda.v1.CancelTurnResponse>(
                service, METHODID_CANCEL_TURN)))
        .addMethod(
          getRewindSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.RewindSessionRequest,
              dev.kodad.koda.v1.RewindSessionResponse>(
                service, METHODID_REWIND_SESSION)))
        .addMethod(
          getUnrewindSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.UnrewindSessionRequest,
              dev.kodad.koda.v1.UnrewindSessionResponse>(
                service, METHODID_UNREWIND_SESSION)))
        .addMethod(
          getGetTurnDiffMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.GetTurnDiffRequest,
              dev.kodad.koda.v1.GetTurnDiffResponse>(
                service, METHODID_GET_TURN_DIFF)))
        .addMethod(
          getRemoveQueuedTurnMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.RemoveQueuedTurnRequest,
              dev.kodad.koda.v1.RemoveQueuedTurnResponse>(
                service, METHODID_REMOVE_QUEUED_TURN)))
        .addMethod(
          getWatchSessionMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.kodad.koda.v1.WatchSessionRequest,
              dev.kodad.koda.v1.WatchSessionResponse>(
                service, METHODID_WATCH_SESSION)))
        .addMethod(
          getListAgentProfilesMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.ListAgentProfilesRequest,
              dev.kodad.koda.v1.ListAgentProfilesResponse>(
                service, METHODID_LIST_AGENT_PROFILES)))
        .addMethod(
          getGetAgentProfileMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.GetAgentProfileRequest,
              dev.kodad.koda.v1.GetAgentProfileResponse>(
                service, METHODID_GET_AGENT_PROFILE)))
        .addMethod(
          getCompactSessionMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.kodad.koda.v1.CompactSessionRequest,
              dev.kodad.koda.v1.CompactSessionResponse>(
                service, METHODID_COMPACT_SESSION)))
        .build();
  }

  private static abstract class SessionServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    SessionServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.kodad.koda.v1.SessionServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("SessionService");
    }
  }

  private static final class SessionServiceFileDescriptorSupplier
      extends SessionServiceBaseDescriptorSupplier {
    SessionServiceFileDescriptorSupplier() {}
  }

  private static final class SessionServiceMethodDescriptorSupplier
      extends SessionServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    SessionServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (SessionServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new SessionServiceFileDescriptorSupplier())
              .addMethod(getGetServerInfoMethod())
              .addMethod(getListModelsMethod())
              .addMethod(getCreateSessionMethod())
              .addMethod(getGetSessionMethod())
              .addMethod(getListSessionsMethod())
              .addMethod(getUpdateSessionMethod())
              .addMethod(getDeleteSessionMethod())
              .addMethod(getForkSessionMethod())
              .addMethod(getListMessagesMethod())
              .addMethod(getListFileChangesMethod())
              .addMethod(getRunTurnMethod())
              .addMethod(getSubmitCommandMethod())
              .addMethod(getCancelTurnMethod())
              .addMethod(getRewindSessionMethod())
              .addMethod(getUnrewindSessionMethod())
              .addMethod(getGetTurnDiffMethod())
              .addMethod(getRemoveQueuedTurnMethod())
              .addMethod(getWatchSessionMethod())
              .addMethod(getListAgentProfilesMethod())
              .addMethod(getGetAgentProfileMethod())
              .addMethod(getCompactSessionMethod())
              .build();
        }
      }
    }
    return result;
  }
}
