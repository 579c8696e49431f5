import { createConnection } from 'node:net';

/**
 * True when a Redis on 127.0.0.1:`port` answers an inline PING with +PONG within 500 ms; false
 * when nothing listens there, something else answers, or it does not answer in time. A probe on a
 * short connection of its own (no client, no retries): for finding or awaiting a local server.
 */
export function answersPing(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      if (!reply.includes('\r\n')) return;
      socket.destroy();
      ok(reply.startsWith('+PONG'));
    });
    socket.once('error', () => ok(false));
    socket.once('close', () => ok(false));
    socket.once('timeout', () => {
      socket.destroy();
      ok(false);
    });
  });
}
