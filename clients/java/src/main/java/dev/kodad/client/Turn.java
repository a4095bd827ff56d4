package dev.kodad.client;

import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.RunTurnRequest;
import dev.kodad.koda.v1.RunTurnResponse;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A running turn, driven step by step: read events (blocking), answer questions, cancel. Iterate
 * it (for-each) for the events until turn_ended, in a try-with-resources block: closing it early
 * cancels the turn and waits for its end.
 */
public final class Turn extends TurnStream implements Iterator<EngineEvent>, Iterable<EngineEvent> {
  /** One item of the response stream: an event, the stream's failure, or its end. */
  private record Item(EngineEvent event, Throwable error) {}

  private static final Item END = new Item(null, null);

  private final BlockingQueue<Item> items = new LinkedBlockingQueue<>();
  private Item peeked;
  private String id = "";

  final ClientResponseObserver<RunTurnRequest, RunTurnResponse> observer =
      new ClientResponseObserver<>() {
        @Override
        public void beforeStart(ClientCallStreamObserver<RunTurnRequest> stream) {
          requests = stream;
        }

        @Override
        public void onNext(RunTurnResponse response) {
          items.add(new Item(response.getEvent(), null));
        }

        @Override
        public void onError(Throwable error) {
          items.add(new Item(null, error));
        }

        @Override
        public void onCompleted() {
          items.add(END);
        }
      };

  Turn(Handlers handlers) {
    super(handlers);
  }

  private boolean ended;

  /** This turn, to iterate with for-each (once). */
  @Override
  public Iterator<EngineEvent> iterator() {
    return this;
  }

  /**
   * Ends the turn if it still runs: cancels it and waits (at most 10 s) for its turn_ended, then
   * closes the stream, so the session's next turn can start at once.
   */
  @Override
  public void close() {
    if (!finished && !ended) {
      cancel();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      try {
        while (true) {
          Item item = peeked != null ? peeked : items.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
          peeked = null;
          if (item == null || item == END || item.error() != null || item.event().hasTurnEnded()) {
            break;
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    abandon();
  }

  /** The turn's id, known after the first event. */
  public String id() {
    return id;
  }

  /**
   * Blocks for the next event; false once the stream closed after turn_ended.
   *
   * @throws KodadException when the stream fails
   */
  @Override
  public boolean hasNext() {
    if (finished) {
      return false;
    }
    if (peeked == null) {
      try {
        peeked = items.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        abandon();
        throw new KodadException(io.grpc.Status.Code.CANCELLED, "interrupted", e);
      }
    }
    if (peeked.error() != null) {
      finished = true;
      throw KodadException.from(peeked.error());
    }
    if (peeked == END) {
      finished = true;
      send(null);
      return false;
    }
    return true;
  }

  @Override
  public EngineEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the turn's stream has ended");
    }
    EngineEvent event = peeked.event();
    peeked = null;
    if (id.isEmpty()) {
      id = event.getTurnId();
    }
    ended |= event.hasTurnEnded();
    respond(event);
    return event;
  }
}
