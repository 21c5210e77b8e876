/**
 * @module events/live
 * The live fan-out of session changes to every open console: sign-ins, sign-outs,
 * revocations and cleanups. One small interface, two implementations:
 *
 * - in-process (an EventEmitter): one instance, as with the SQL store on SQLite;
 * - Redis pub/sub on `<prefix>live`: every instance sharing one Redis sees every change.
 *   Publishing goes through the app's client; receiving needs a connection of its own
 *   (a subscribed connection runs no other command), made with `client.duplicate()`.
 *
 * Events name sessions by their digest (the id the console shows), never by token.
 * Delivery is best effort: a change published while Redis is away is lost, so the Redis
 * bus tells its listeners to `resync` (re-read the figures) when its subscription returns.
 *
 * LIMITATION: several instances on the SQL store (PostgreSQL, no Redis) each hear only their
 * own changes, and changes made by the CLI (`warden sessions revoke`, `cleanup`) reach no
 * console; a third implementation on PostgreSQL LISTEN/NOTIFY would lift both. With Redis,
 * the CLI's runtime publishes its changes on this bus like any instance.
 */
import { EventEmitter } from 'node:events';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { waitAtMost } from '../resilience/wait-at-most.js';

const SessionId = Type.String({ pattern: '^[0-9a-f]{64}$' });
const At = Type.Integer({ minimum: 0 });

// Closed objects: a message with any field beyond these (a token, say) is not an event.
const closed = { additionalProperties: false } as const;

/** Every event on the bus, as JSON travels between instances. Times are epoch milliseconds. */
export const LiveEventSchema = Type.Union([
  Type.Object(
    { type: Type.Literal('signed_in'), sessionId: SessionId, userId: Type.Integer(), at: At },
    closed,
  ),
  Type.Object(
    { type: Type.Literal('signed_out'), sessionId: SessionId, userId: Type.Integer(), at: At },
    closed,
  ),
  Type.Object(
    {
      type: Type.Literal('revoked'),
      sessionIds: Type.Array(SessionId, { maxItems: 1_000 }),
      reason: Type.String({ maxLength: 64 }),
      at: At,
    },
    closed,
  ),
  Type.Object(
    { type: Type.Literal('cleaned_up'), count: Type.Integer({ minimum: 0 }), at: At },
    closed,
  ),
  /** Changes may have been missed (a subscription came back): re-read everything. */
  Type.Object({ type: Type.Literal('resync'), at: At }, closed),
]);
export type LiveEvent = Static<typeof LiveEventSchema>;

export type LiveListener = (event: LiveEvent) => void;

export interface LiveBus {
  readonly kind: 'local' | 'redis';
  /** Sends an event to every listener on every instance the bus reaches. Never throws. */
  publish(event: LiveEvent): void;
  /** Calls `listener` for every event from now on; returns the function that stops it. */
  subscribe(listener: LiveListener): () => void;
  /** Resolves once the bus receives (for Redis: subscribed, or gave up waiting). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The event, or null when a message is not one (another program on the channel, a bug). */
export function parseLiveEvent(raw: string): LiveEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  return Value.Check(LiveEventSchema, value) ? value : null;
}

/** Listeners that throw are reported, never allowed to stop the others. */
class Listeners {
  readonly #emitter = new EventEmitter();

  constructor(private readonly onError: (err: unknown) => void) {
    // Every open console stream is one listener; the default warning at 11 would be noise.
    this.#emitter.setMaxListeners(0);
  }

  add(listener: LiveListener): () => void {
    const guarded = (event: LiveEvent) => {
      try {
        listener(event);
      } catch (err) {
        this.onError(err);
      }
    };
    this.#emitter.on('event', guarded);
    return () => this.#emitter.off('event', guarded);
  }

  emit(event: LiveEvent): void {
    this.#emitter.emit('event', event);
  }

  clear(): void {
    this.#emitter.removeAllListeners();
  }
}

export interface LiveBusOptions {
  /** Told of every failure (a listener that threw, Redis refusing a publish…). */
  onError?: (err: unknown, what: string) => void;
}

/** In-process delivery: every listener of this instance, synchronously. */
export function createLocalLiveBus(options: LiveBusOptions = {}): LiveBus {
  const listeners = new Listeners((err) => options.onError?.(err, 'listener'));
  return {
    kind: 'local',
    publish: (event) => listeners.emit(event),
    subscribe: (listener) => listeners.add(listener),
    start: async () => {},
    close: async () => listeners.clear(),
  };
}

/** The slice of a node-redis v5 subscriber connection the bus uses. */
export interface LiveRedisSubscriber {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  destroy(): void;
}

/** The slice of a node-redis v5 client the bus uses; `createClient()` satisfies it. */
export interface LiveRedisClient {
  publish(channel: string, message: string): Promise<number>;
  duplicate(): LiveRedisSubscriber;
}

export interface RedisLiveBusOptions extends LiveBusOptions {
  client: LiveRedisClient;
  /** The key prefix of the session store; the channel is `<prefix>live`. */
  prefix: string;
  /** How long start() waits for the subscription, in milliseconds. @default 2000 */
  startWaitMs?: number;
  /** A fixed clock (tests). @default Date.now */
  clock?: () => number;
}

const DEFAULT_START_WAIT_MS = 2_000;

/**
 * Redis pub/sub across instances. Publishing uses the shared client (with no offline queue, a
 * publish while Redis is down fails at once and the event is dropped, never replayed late);
 * the subscriber reconnects and resubscribes by itself, and each return is a `resync`.
 */
export function createRedisLiveBus(options: RedisLiveBusOptions): LiveBus {
  const channel = `${options.prefix}live`;
  const clock = options.clock ?? Date.now;
  const report = options.onError ?? (() => {});
  const listeners = new Listeners((err) => report(err, 'listener'));
  const subscriber = options.client.duplicate();
  let readyOnce = false;
  let starting: Promise<void> | undefined;
  let closed = false;
  // One report per outage: node-redis emits 'error' on every failed reconnect attempt.
  let publishFailing = false;
  let subscriberFailing = false;

  subscriber.on('error', (err) => {
    if (subscriberFailing) return;
    subscriberFailing = true;
    report(err, 'subscriber');
  });
  subscriber.on('ready', () => {
    subscriberFailing = false;
    // node-redis resubscribes on reconnect; whatever was published meanwhile is lost.
    if (readyOnce) listeners.emit({ type: 'resync', at: clock() });
    readyOnce = true;
  });

  const onMessage = (message: string) => {
    const event = parseLiveEvent(message);
    if (event) listeners.emit(event);
    else report(new Error('not a live event'), 'message');
  };

  return {
    kind: 'redis',
    publish(event) {
      options.client.publish(channel, JSON.stringify(event)).then(
        () => {
          publishFailing = false;
        },
        (err) => {
          if (publishFailing) return;
          publishFailing = true;
          report(err, 'publish');
        },
      );
    },
    subscribe: (listener) => listeners.add(listener),
    start() {
      starting ??= (async () => {
        const subscribed = subscriber
          .connect()
          .then(() => subscriber.subscribe(channel, onMessage))
          .catch((err) => {
            if (!closed) report(err, 'subscribe');
          });
        // Redis may be away at start: the subscriber keeps trying on its own, and the app
        // starts anyway (its store calls answer 503 meanwhile).
        await waitAtMost(subscribed, options.startWaitMs ?? DEFAULT_START_WAIT_MS);
      })();
      return starting;
    },
    async close() {
      closed = true;
      listeners.clear();
      // A subscriber holds nothing worth a graceful QUIT, and Redis may be gone.
      if (subscriber.isOpen) subscriber.destroy();
    },
  };
}
