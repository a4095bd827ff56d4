/**
 * The TypeScript client of kodad, a coding-agent engine served over gRPC.
 *
 *   const client = KodadClient.connect("127.0.0.1:50051");
 *   const session = await client.createSession({ workspace: "/path/to/repo" });
 *   for await (const event of client.runTurn(session.id, "add a README")) { ... }
 *
 * Approval and loop-cap questions go to handlers (default: reject / stop). Failed calls throw
 * KodadError carrying the gRPC status code name ("NOT_FOUND", ...).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  type CallOptions,
  type Client,
  type Interceptor,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { connect as connectSocket } from "node:net";
import type { Sidecar } from "./sidecar.js";
import {
  Decision,
  DisconnectPolicy,
  LoopAction,
  type ApprovalRequested,
  type EngineCommandSchema,
  type EngineEvent,
  type LoopCapReached,
  type TurnEnded,
  type UserQuestion,
  WhenBusy,
} from "./gen/koda/v1/engine_pb.js";
import type {
  Message,
  Model,
  ProviderConfigSchema,
  Session,
  SessionSchema,
} from "./gen/koda/v1/session_pb.js";
import {
  SessionService,
  type GetServerInfoResponse,
  type RunTurnRequestSchema,
} from "./gen/koda/v1/session_service_pb.js";

export * from "./gen/koda/v1/engine_pb.js";
export * from "./gen/koda/v1/session_pb.js";
export * from "./gen/koda/v1/session_service_pb.js";

/** A failed call: `code` is the gRPC status code name, `message` the service's message. */
export class KodadError extends Error {
  constructor(
    /** The gRPC status code name, e.g. "NOT_FOUND" or "FAILED_PRECONDITION". */
    readonly code: string,
    message: string,
    /** The numeric gRPC status code. */
    readonly grpcCode: number,
    /**
     * The status's google.rpc.ErrorInfo reason, e.g. "TURN_ALREADY_RUNNING" (the proto's
     * SessionService comment lists them); "" when the failure did not come from kodad.
     */
    readonly reason: string = "",
    /** The ErrorInfo's metadata, e.g. `turn_id` for TURN_ALREADY_RUNNING. */
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "KodadError";
  }

  /** Converts anything a call threw; RPC failures become KodadError. */
  static from(error: unknown): unknown {
    if (error instanceof KodadError) return error;
    if (error instanceof ConnectError) {
      // Connect's codes are gRPC's numbers, named in camel case ("NotFound").
      const name = Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
      const info = errorInfo(error);
      return new KodadError(name, error.rawMessage, error.code, info.reason, info.metadata);
    }
    return error;
  }
}

/** The google.rpc.ErrorInfo among a status's details (decoded here: it is two strings and a map). */
function errorInfo(error: ConnectError): { reason: string; metadata: Record<string, string> } {
  const found = { reason: "", metadata: {} as Record<string, string> };
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== "google.rpc.ErrorInfo") continue;
    if (!(detail.value instanceof Uint8Array)) continue;
    const reader = new BinaryReader(detail.value);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) {
        found.reason = reader.string();
      } else if (field === 3 && wireType === WireType.LengthDelimited) {
        const end = reader.uint32() + reader.pos;
        let key = "";
        let value = "";
        while (reader.pos < end) {
          const [entryField, entryType] = reader.tag();
          if (entryField === 1 && entryType === WireType.LengthDelimited) key = reader.string();
          else if (entryField === 2 && entryType === WireType.LengthDelimited) value = reader.string();
          else reader.skip(entryType);
        }
        found.metadata[key] = value;
      } else {
        reader.skip(wireType);
      }
    }
  }
  return found;
}

/** What a stream throws: the abort reason (an AbortError) once aborted, else a KodadError. */
function aborted(signal: AbortSignal, error: unknown): unknown {
  return signal.aborted ? signal.reason : KodadError.from(error);
}

async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw KodadError.from(error);
  }
}

/** How to reach the service. */
export interface ConnectOptions {
  /** A bearer token sent with every call. */
  token?: string;
  /** Connect with TLS: PEM root certificates, and a client certificate for mutual TLS. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

/** A decision on an approval request; `null` leaves it to another client. */
/** The optional parts of a turn's start. */
export type TurnOptions = {
  /** Keep the turn running when the stream breaks (else it is cancelled). */
  continueOnDisconnect?: boolean;
  signal?: AbortSignal;
  /** What to do when the session runs a turn: reject (the default), enqueue, interrupt, steer. */
  whenBusy?: WhenBusy;
  /** A JSON Schema the answer must match; read the answer with `outputOf`. */
  outputSchema?: unknown;
  /** Budgets of the turn (0: none). */
  maxTotalTokens?: number | bigint;
  maxCost?: number;
};

/** The answer of a turn started with an output schema, as a JSON value (undefined without). */
export function outputOf(ended: TurnEnded): unknown {
  return ended.outputJson ? JSON.parse(ended.outputJson) : undefined;
}

export type ApprovalAnswer = { decision: Decision; feedback?: string } | null;
/** A decision on a loop-cap question; `null` leaves it to another client. */
export type LoopAnswer = { action: LoopAction; extraIterations?: number } | null;

/** The koda.v1 contract version this client was built for; compare it with
 * `serverInfo().contractVersion` (major.minor) to detect a service of another release. */
export const CONTRACT_VERSION = "0.2.0";

/** What an ask_user question gets when the turn has no question handler. */
export const NO_ANSWER =
  "Nobody can answer questions here: decide yourself, go on, and say in your answer what " +
  "you assumed.";

/**
 * Answers a turn's questions. Without them approvals are rejected, the loop stops and
 * ask_user questions get NO_ANSWER; a handler returning null leaves it to another client.
 */
export interface TurnHandlers {
  onApproval?: (request: ApprovalRequested) => ApprovalAnswer | Promise<ApprovalAnswer>;
  onLoopCap?: (question: LoopCapReached) => LoopAnswer | Promise<LoopAnswer>;
  onQuestion?: (question: UserQuestion) => string | null | Promise<string | null>;
  /** Keep the turn running if the stream breaks (default: it is cancelled). */
  continueOnDisconnect?: boolean;
  /** Aborting breaks the stream (and cancels the turn unless it continues on disconnect). */
  signal?: AbortSignal;
}

/** An async queue of outgoing messages for a client stream. */
class Outbox<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;

  push(item: T): void {
    if (this.closed) throw new Error("the turn's stream is closed");
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting({ value: item, done: false });
    else this.items.push(item);
  }

  close(): void {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  private take(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  // An async generator, since the transport also calls throw() and return() on it.
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (let next = await this.take(); !next.done; next = await this.take()) yield next.value;
  }
}

type CommandInit = MessageInitShape<typeof EngineCommandSchema>;

/** A running turn, driven step by step: read events, answer questions, cancel. */
export class Turn implements AsyncIterable<EngineEvent> {
  /** The turn's id, known after the first event. */
  id = "";
  private ended = false;
  private read = false; // a read has started (else the call's failure has no listener)
  private readonly events: AsyncIterator<{ event?: EngineEvent }>;

  constructor(
    private readonly outbox: Outbox<MessageInitShape<typeof RunTurnRequestSchema>>,
    responses: AsyncIterable<{ event?: EngineEvent }>,
    private readonly abort: AbortController,
    private readonly signal: AbortSignal,
  ) {
    this.events = responses[Symbol.asyncIterator]();
  }

  /** The next event, or undefined once the stream closed after turn_ended. */
  async next(): Promise<EngineEvent | undefined> {
    this.read = true;
    try {
      const result = await this.events.next();
      if (result.done) {
        this.outbox.close();
        return undefined;
      }
      const event = result.value.event!;
      this.id ||= event.turnId;
      if (event.payload.case === "turnEnded") {
        // Nothing more to send: half-close now, before the service closes the stream.
        this.ended = true;
        this.outbox.close();
      }
      return event;
    } catch (error) {
      if (this.ended && !this.signal.aborted) {
        // The turn is over and every event arrived; the transport reporting the close of
        // an already finished stream (e.g. "Premature close") changes nothing.
        this.close();
        return undefined;
      }
      const thrown = aborted(this.signal, error);
      this.close();
      throw thrown;
    }
  }

  /** Sends a command on the turn's stream. */
  send(command: CommandInit): void {
    this.outbox.push({ command });
  }

  /** Answers an approval request on the turn's stream. */
  approve(requestId: string, decision: Decision, feedback = ""): void {
    this.send({ command: { case: "approvalDecision", value: { requestId, decision, feedback } } });
  }

  /** Answers a loop-cap question on the turn's stream. */
  decideLoop(action: LoopAction, extraIterations = 0): void {
    this.send({ command: { case: "loopDecision", value: { action, extraIterations } } });
  }

  /** Adds input to the running turn: the model sees it at its next request (the event
   * user_input_added shows where it landed); too late for the turn, it is queued as the
   * session's next turn instead. */
  steer(text: string, expectedTurnId = ""): void {
    this.send({ command: { case: "steer", value: { text, expectedTurnId } } });
  }

  /** Answers an ask_user question (user_question) of the turn. */
  answer(requestId: string, text: string): void {
    this.send({ command: { case: "userAnswer", value: { requestId, text } } });
  }

  /** Asks the service to cancel the turn; the events end with turn_ended CANCELLED. */
  cancel(): void {
    this.send({ command: { case: "cancel", value: {} } });
  }

  /** Abandons the stream at once (the turn is cancelled unless it continues on disconnect);
   * `end()` also waits for the turn to be over. */
  close(): void {
    if (!this.read) this.events.next().catch(() => undefined); // its failure is expected
    this.read = this.ended = true;
    this.outbox.close();
    this.abort.abort();
  }

  /**
   * Ends the turn if it still runs: cancels it and waits (at most 10 s) for its turn_ended,
   * then closes the stream, so the session's next turn can start at once. Leaving a loop
   * over the turn early does this.
   */
  async end(): Promise<void> {
    if (this.ended) return;
    const timer = setTimeout(() => this.close(), 10_000);
    try {
      this.cancel();
      for (let event = await this.next(); event; event = await this.next()) {
        if (event.payload.case === "turnEnded") break;
      }
    } catch {
      // The stream broke or was closed: nothing more to wait for.
    } finally {
      clearTimeout(timer);
      this.close();
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EngineEvent> {
    try {
      for (let event = await this.next(); event; event = await this.next()) yield event;
    } finally {
      await this.end();
    }
  }
}

/** A connection to a kodad service. Close it when done. */
export class KodadClient {
  /** The generated stub, for anything the wrapper does not cover. */
  readonly raw: Client<typeof SessionService>;
  private readonly controller = new AbortController();

  private constructor(
    raw: Client<typeof SessionService>,
    private readonly connection: Http2SessionManager,
  ) {
    this.raw = raw;
  }

  /** Connects to a kodad service at target ("host:port", or "unix:///path" for a socket). */
  static connect(target: string, options: ConnectOptions = {}): KodadClient {
    const interceptors: Interceptor[] = [];
    const token = options.token;
    if (token) {
      interceptors.push((next) => (request) => {
        request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      });
    }
    const socket = target.startsWith("unix:") ? target.replace(/^unix:(\/\/)?/, "") : null;
    const baseUrl = `${options.tls ? "https" : "http"}://${socket ? "localhost" : target}`;
    // Our own connection manager, so close() can end the connection (else it keeps Node alive).
    const sessions = new Http2SessionManager(
      baseUrl,
      {},
      socket ? { createConnection: () => connectSocket(socket) } : (options.tls ?? {}),
    );
    const transport = createGrpcTransport({ baseUrl, interceptors, sessionManager: sessions });
    return new KodadClient(createClient(SessionService, transport), sessions);
  }

  private options(options?: CallOptions): CallOptions {
    const signal = options?.signal
      ? AbortSignal.any([options.signal, this.controller.signal])
      : this.controller.signal;
    return { ...options, signal };
  }

  /** Breaks every open call of this client (and stops the kodad it spawned, if any). */
  async close(): Promise<void> {
    this.controller.abort();
    this.connection.abort();
    await this.sidecar?.stop();
  }

  /** The kodad this client spawned with spawnSidecar, if any. */
  sidecar?: Sidecar;

  /** Describes the service. */
  serverInfo(options?: CallOptions): Promise<GetServerInfoResponse> {
    return call(() => this.raw.getServerInfo({}, this.options(options)));
  }

  /**
   * Lists the models a provider serves: `provider`'s, else the provider of `sessionId`, else
   * the service's default provider.
   */
  async listModels(
    request: { provider?: MessageInitShape<typeof ProviderConfigSchema>; sessionId?: string } = {},
    options?: CallOptions,
  ): Promise<Model[]> {
    const response = await call(() => this.raw.listModels(request, this.options(options)));
    return response.models;
  }

  /** Creates a session; `workspace` is required. */
  async createSession(
    session: MessageInitShape<typeof SessionSchema>,
    options?: CallOptions,
  ): Promise<Session> {
    const response = await call(() => this.raw.createSession({ session }, this.options(options)));
    return response.session!;
  }

  /** Returns one session. */
  async getSession(sessionId: string, options?: CallOptions): Promise<Session> {
    const response = await call(() => this.raw.getSession({ sessionId }, this.options(options)));
    return response.session!;
  }

  /** Every session carrying `labels` (all when empty), newest first, page by page. */
  async *sessions(labels: Record<string, string> = {}, options?: CallOptions): AsyncGenerator<Session> {
    let pageToken = "";
    do {
      const page = await call(() =>
        this.raw.listSessions({ pageToken, labels }, this.options(options)),
      );
      yield* page.sessions;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** Changes the named fields (proto names, e.g. "approval_mode") of a session carrying its id. */
  async updateSession(
    session: MessageInitShape<typeof SessionSchema>,
    fields: string[],
    options?: CallOptions,
  ): Promise<Session> {
    const updateMask = create(FieldMaskSchema, { paths: fields });
    const response = await call(() =>
      this.raw.updateSession({ session, updateMask }, this.options(options)),
    );
    return response.session!;
  }

  /** Deletes a session and everything of it. */
  async deleteSession(sessionId: string, options?: CallOptions): Promise<void> {
    await call(() => this.raw.deleteSession({ sessionId }, this.options(options)));
  }

  /** Copies a session with its history. */
  async forkSession(sessionId: string, title = "", options?: CallOptions): Promise<Session> {
    const response = await call(() =>
      this.raw.forkSession({ sessionId, title }, this.options(options)),
    );
    return response.session!;
  }

  /** The whole history of a session, oldest first. */
  async messages(sessionId: string, options?: CallOptions): Promise<Message[]> {
    const out: Message[] = [];
    let pageToken = "";
    do {
      const page = await call(() =>
        this.raw.listMessages({ sessionId, pageSize: 1000, pageToken }, this.options(options)),
      );
      out.push(...page.messages);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Sends a command to the running turn of a session, from any client; returns the turn id. */
  async submit(sessionId: string, command: CommandInit, options?: CallOptions): Promise<string> {
    const response = await call(() =>
      this.raw.submitCommand({ sessionId, command }, this.options(options)),
    );
    return response.turnId;
  }

  /** Cancels the running turn of a session (with `clearQueue`, its queued turns too); returns
   * its id. */
  async cancelTurn(
    sessionId: string,
    options?: CallOptions & { clearQueue?: boolean },
  ): Promise<string> {
    const request = { sessionId, clearQueue: options?.clearQueue ?? false };
    const response = await call(() => this.raw.cancelTurn(request, this.options(options)));
    return response.turnId;
  }

  /** Returns the workspace and/or history to just before `turnId`; `unrewind` undoes it. */
  async rewind(
    sessionId: string,
    toTurnId: string,
    what: { files?: boolean; history?: boolean; force?: boolean } = {},
    options?: CallOptions,
  ) {
    const request = {
      sessionId,
      toTurnId,
      files: what.files ?? true,
      history: what.history ?? true,
      force: what.force ?? false,
    };
    const response = await call(() => this.raw.rewindSession(request, this.options(options)));
    return response.rewound;
  }

  /** Undoes the session's latest rewind. */
  async unrewind(sessionId: string, force = false, options?: CallOptions) {
    const response = await call(() =>
      this.raw.unrewindSession({ sessionId, force }, this.options(options)),
    );
    return response.rewound;
  }

  /** The unified diff and per-file stats of what a turn changed in the workspace. */
  async turnDiff(sessionId: string, turnId: string, options?: CallOptions) {
    return call(() => this.raw.getTurnDiff({ sessionId, turnId }, this.options(options)));
  }

  /** The files the session's tools created, modified or deleted (of one turn with `turnId`),
   * oldest first. */
  async fileChanges(sessionId: string, turnId = "", options?: CallOptions) {
    const out = [];
    let pageToken = "";
    do {
      const request = { sessionId, turnId, pageSize: 1000, pageToken };
      const page = await call(() => this.raw.listFileChanges(request, this.options(options)));
      out.push(...page.changes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Summarises the session's older history now (as a turn of its own). */
  async compact(sessionId: string, options?: CallOptions) {
    return call(() => this.raw.compactSession({ sessionId }, this.options(options)));
  }

  /** The agent profiles sessions may use (with `workspace`, its own ones too). */
  async agentProfiles(workspace = "", options?: CallOptions) {
    const response = await call(() =>
      this.raw.listAgentProfiles({ workspace }, this.options(options)),
    );
    return response.profiles;
  }

  /** One agent profile by name (with `workspace`, its own ones included). */
  async agentProfile(name: string, workspace = "", options?: CallOptions) {
    const response = await call(() =>
      this.raw.getAgentProfile({ name, workspace }, this.options(options)),
    );
    return response.profile!;
  }

  /** Takes a queued turn off the session's queue (NOT_FOUND once it has started). */
  async removeQueuedTurn(sessionId: string, turnId: string, options?: CallOptions): Promise<void> {
    await call(() => this.raw.removeQueuedTurn({ sessionId, turnId }, this.options(options)));
  }

  /** The stored events of a session after `afterSeq`, then live ones, until aborted. */
  async *watch(
    sessionId: string,
    afterSeq: bigint | number = 0n,
    options?: CallOptions,
  ): AsyncGenerator<EngineEvent> {
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, this.options(options).signal!]);
    try {
      const stream = this.raw.watchSession(
        { sessionId, afterSeq: BigInt(afterSeq) },
        { ...options, signal },
      );
      for await (const response of stream) yield response.event!;
    } catch (error) {
      throw aborted(signal, error);
    } finally {
      abort.abort();
    }
  }

  /** Starts a turn and returns it to be driven step by step. */
  startTurn(sessionId: string, text: string, options: TurnOptions = {}): Turn {
    const abort = new AbortController();
    const signals = [abort.signal, this.controller.signal];
    if (options.signal) signals.push(options.signal);
    const outbox = new Outbox<MessageInitShape<typeof RunTurnRequestSchema>>();
    const onDisconnect = options.continueOnDisconnect
      ? DisconnectPolicy.CONTINUE
      : DisconnectPolicy.CANCEL;
    const start = {
      sessionId,
      text,
      onDisconnect,
      whenBusy: options.whenBusy ?? WhenBusy.REJECT,
      outputSchemaJson:
        options.outputSchema === undefined ? "" : JSON.stringify(options.outputSchema),
      maxTotalTokens: BigInt(options.maxTotalTokens ?? 0),
      maxCost: options.maxCost ?? 0,
    };
    outbox.push({ command: { command: { case: "startTurn", value: start } } });
    const signal = AbortSignal.any(signals);
    const responses = this.raw.runTurn(outbox, { signal });
    return new Turn(outbox, responses, abort, signal);
  }

  /**
   * Runs a turn and yields its events until turn_ended, answering questions with `handlers`.
   * Leaving the loop early (break, return, a throw) cancels the turn and waits for its end.
   */
  async *runTurn(
    sessionId: string,
    text: string,
    handlers: TurnHandlers = {},
  ): AsyncGenerator<EngineEvent> {
    const turn = this.startTurn(sessionId, text, handlers);
    for await (const event of turn) {
      yield event;
      const payload = event.payload;
      if (payload.case === "approvalRequested") {
        const answer = handlers.onApproval
          ? await handlers.onApproval(payload.value)
          : { decision: Decision.REJECT };
        if (answer) turn.approve(payload.value.requestId, answer.decision, answer.feedback);
      } else if (payload.case === "loopCapReached") {
        const answer = handlers.onLoopCap
          ? await handlers.onLoopCap(payload.value)
          : { action: LoopAction.STOP };
        if (answer) turn.decideLoop(answer.action, answer.extraIterations);
      } else if (payload.case === "userQuestion") {
        const answer = handlers.onQuestion ? await handlers.onQuestion(payload.value) : NO_ANSWER;
        if (answer !== null) turn.answer(payload.value.requestId, answer);
      }
    }
  }
}

export { spawnSidecar, SidecarError, type ReadyLine, type SidecarOptions } from "./sidecar.js";
