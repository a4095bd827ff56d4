package dev.kodad.client;

import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.WatchSessionResponse;
import io.grpc.Context;
import java.util.Iterator;

/** A session's events as a blocking iterator; close it to stop watching. */
public final class EventStream implements Iterator<EngineEvent>, Iterable<EngineEvent>, AutoCloseable {
  private final Iterator<WatchSessionResponse> responses;
  private final Context.CancellableContext context;

  EventStream(Iterator<WatchSessionResponse> responses, Context.CancellableContext context) {
    this.responses = responses;
    this.context = context;
  }

  /** This stream, to iterate with for-each (once). */
  @Override
  public Iterator<EngineEvent> iterator() {
    return this;
  }

  /** Blocks for the next event. */
  @Override
  public boolean hasNext() {
    try {
      return responses.hasNext();
    } catch (RuntimeException e) {
      throw KodadException.from(e);
    }
  }

  @Override
  public EngineEvent next() {
    try {
      return responses.next().getEvent();
    } catch (RuntimeException e) {
      throw KodadException.from(e);
    }
  }

  @Override
  public void close() {
    context.cancel(null);
  }
}
