import { connect, type Socket } from 'node:net';

/**
 * A minimal keep-alive HTTP/1.1 client over `net` for the load generator: one request at a time
 * per connection, Content-Length bodies only (what Koa and node:http send for JSON).
 */
export class LiteHttp {
  private socket: Socket | undefined;
  private lastUsed = 0;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: { status: number; body: string }) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly port: number,
    private readonly host = '127.0.0.1',
  ) {}

  /** `headers`: extra request headers, e.g. Idempotency-Key. */
  post(path: string, json: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    const socket = this.connection();
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/json\r\n${extra}` +
          `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
      );
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connection(): Socket {
    // Node closes keep-alive connections idle for 5 s; reusing one near then races with its
    // close (the request is lost), so like undici we replace connections idle for 2 s.
    const idle = Date.now() - this.lastUsed;
    this.lastUsed = Date.now();
    if (this.socket && !this.socket.destroyed && idle < 2000) return this.socket;
    this.socket?.destroy();
    const socket = connect({ port: this.port, host: this.host, noDelay: true });
    this.buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const length = m ? Number(m[1]) : 0;
      if (this.buf.length < end + 4 + length) return;
      const body = this.buf.subarray(end + 4, end + 4 + length).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + length);
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.resolve({ status: Number(head.slice(9, 12)), body });
    });
    const fail = (err: Error) => {
      if (this.socket !== socket) return;
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
    this.socket = socket;
    return socket;
  }
}
