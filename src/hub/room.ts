import type { EventEmitter } from 'node:events';

/** A watcher's outgoing buffer, as a transport sees it. */
export interface Outbox {
  /** Bytes handed to the transport and not yet to the kernel. */
  buffered(): number;
  /** The watcher is gone: nothing more can be sent. */
  gone(): boolean;
  /** Emits 'drain' when its buffer empties (the socket, or the HTTP response). */
  drains: EventEmitter;
  /** Emits 'close' when the watcher goes away. */
  closes: EventEmitter;
}

/**
 * The live-event rule of both transports, asked after each live event is written: true when the
 * watcher is a slow consumer. Past `limit`, this turn's corked bytes are handed to the kernel at
 * once (`flush`) and what it leaves unsent is judged, so a fast client takes a burst larger than
 * the limit, and a slow one costs at most the limit plus one event.
 */
export function overLimit(out: Pick<Outbox, 'buffered'>, limit: number, flush: () => void): boolean {
  if (out.buffered() <= limit) return false;
  flush();
  return out.buffered() > limit;
}

/** How often the buffer is checked besides 'drain', which only follows a write that hit the high-water mark. */
const POLL_MS = 20;

/**
 * The flow control of a replay (see WatchSink.room): undefined while at most `limit` bytes wait,
 * else a promise that resolves true once they are down to `limit`, false when the watcher goes
 * away, and false after `stallMs` without room, once `onStall` has closed the watcher as a slow
 * consumer.
 */
export function waitForRoom(out: Outbox, limit: number, stallMs: number, onStall: () => void): Promise<boolean> | undefined {
  if (out.gone()) return Promise.resolve(false);
  if (out.buffered() <= limit) return undefined;
  return new Promise<boolean>((resolve) => {
    const check = () => {
      if (out.gone()) settle(false);
      else if (out.buffered() <= limit) settle(true);
    };
    const closed = () => settle(false);
    const poll = setInterval(check, POLL_MS);
    const stall = setTimeout(() => {
      onStall();
      settle(false);
    }, stallMs);
    const settle = (goOn: boolean) => {
      clearInterval(poll);
      clearTimeout(stall);
      out.drains.off('drain', check);
      out.closes.off('close', closed);
      resolve(goOn);
    };
    out.drains.on('drain', check);
    out.closes.on('close', closed);
  });
}
