import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { clientAddress } from '../../src/http/client-address.js';

const req = (xff?: string | string[]) =>
  ({ socket: { remoteAddress: '10.0.0.9' }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

test('without trusted proxies X-Forwarded-For is ignored', () => {
  assert.equal(clientAddress(req('1.2.3.4'), 0), '10.0.0.9');
});

test('with n trusted proxies the client is the n-th entry from the right', () => {
  assert.equal(clientAddress(req('6.6.6.6, 1.2.3.4'), 1), '1.2.3.4', 'a spoofed left entry is ignored');
  assert.equal(clientAddress(req('6.6.6.6, 1.2.3.4, 10.0.0.2'), 2), '1.2.3.4');
  assert.equal(clientAddress(req(['6.6.6.6', '1.2.3.4']), 1), '1.2.3.4');
  assert.equal(clientAddress(req('1.2.3.4'), 3), '1.2.3.4', 'fewer entries than proxies');
  assert.equal(clientAddress(req(), 1), '10.0.0.9', 'no header');
  assert.equal(clientAddress(req(' , '), 1), '10.0.0.9', 'empty entries');
});
