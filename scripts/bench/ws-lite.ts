import { connect, type Socket } from 'node:net';

/**
 * A minimal WebSocket client over `net`, so the load generator costs little CPU per socket:
 * fixed handshake key (the accept header is not checked), text and close frames only, pings
 * answered. Also used by tests that need a client which stops reading.
 */
export interface LiteWsHandlers {
  open?(): void;
  text(data: string): void;
  close(code: number, reason: string): void;
}

export interface LiteWs {
  readonly socket: Socket;
  /** Sends a text frame (masked with a zero key, so the payload goes as it is). */
  send(text: string): void;
  /** Drops the TCP connection without a close handshake, as a broken network would. */
  destroy(): void;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const MASK = Buffer.alloc(4);

export function openLiteWs(port: number, path: string, h: LiteWsHandlers, host = '127.0.0.1'): LiteWs {
  const socket = connect({ port, host, noDelay: true });
  let buf: Buffer = Buffer.alloc(0);
  let upgraded = false;
  let closed = false;
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    socket.destroy();
    h.close(code, reason);
  };
  socket.on('connect', () => {
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) return finish(1006, head.split('\r\n')[0] ?? 'no upgrade');
      upgraded = true;
      buf = buf.subarray(end + 4);
      h.open?.();
    }
    while (buf.length >= 2) {
      const opcode = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) return;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      if (opcode === 1) h.text(payload.toString('utf8'));
      else if (opcode === 9) socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length]), MASK, payload]));
      else if (opcode === 8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        socket.write(Buffer.concat([Buffer.from([0x88, 0x82]), MASK, payload.subarray(0, 2)]));
        return finish(code, payload.subarray(2).toString('utf8'));
      }
    }
  });
  socket.on('error', () => finish(1006, 'socket error'));
  socket.on('close', () => finish(1006, 'connection closed'));
  return {
    socket,
    send: (text) => {
      const payload = Buffer.from(text, 'utf8');
      const len = payload.length;
      const head = len < 126
        ? Buffer.from([0x81, 0x80 | len])
        : len < 65536
          ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
          : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
      socket.write(Buffer.concat([head, MASK, payload]));
    },
    destroy: () => {
      closed = true;
      socket.destroy();
    },
  };
}
