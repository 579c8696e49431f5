import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Outbox } from '../hub/room.js';
import { BATCH_MAX_BYTES } from '../wire/frames.js';

/**
 * What a connection sends, written so that one event-loop turn costs one write to the kernel: the
 * frames of a turn (a replay page, a read's live events, the close) are corked together and handed
 * over after it. With batches (src/wire/frames.ts) the turn's messages go in order in as few
 * frames as BATCH_MAX_BYTES allows, each a JSON array of messages that together hold at most that
 * many bytes, or of one larger message alone. It is the connection's Outbox for the slow-consumer
 * rules (src/hub/room.ts).
 */
export class FrameWriter implements Outbox {
  private corked = false;
  /** With batches: the messages gathered for the next frame, and their size in bytes. */
  private readonly batch: string[] | undefined;
  private batchBytes = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    batched: boolean,
  ) {
    this.batch = batched ? [] : undefined;
  }

  get drains(): Duplex {
    return this.socket;
  }

  get closes(): WebSocket {
    return this.ws;
  }

  /** Bytes written and not yet handed to the kernel: the socket's, and the batch being gathered. */
  buffered(): number {
    return this.ws.bufferedAmount + this.batchBytes;
  }

  gone(): boolean {
    return this.ws.readyState !== this.ws.OPEN;
  }

  /** Sends one JSON message (dropped once the socket is not open). */
  send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.endBatch();
        this.socket.uncork();
      });
    }
    if (!this.batch) return this.ws.send(text);
    const bytes = Buffer.byteLength(text);
    if (this.batchBytes + bytes > BATCH_MAX_BYTES) this.endBatch();
    this.batch.push(text);
    this.batchBytes += bytes;
    if (this.batchBytes >= BATCH_MAX_BYTES) this.endBatch();
  }

  /** Hands what this turn wrote so far to the kernel; the rest of the turn is corked again. */
  flush(): void {
    this.endBatch();
    if (!this.corked) return;
    this.socket.uncork();
    this.socket.cork();
  }

  /** Closes the connection (unless it is closing already) after the batch being gathered. */
  close(code: number, reason: string): void {
    this.endBatch();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
  }

  /** Sends the batch being gathered as a frame. */
  private endBatch(): void {
    if (!this.batch || this.batch.length === 0) return;
    const frame = `[${this.batch.join(',')}]`;
    this.batch.length = 0;
    this.batchBytes = 0;
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(frame);
  }
}
