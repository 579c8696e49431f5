import assert from 'node:assert/strict';
import { test } from 'node:test';
import { originAllowed } from '../../src/ws/origin.js';

test('default: no Origin, same host and localhost are allowed; anything else is not', () => {
  const host = 'tasks.example.com';
  assert.equal(originAllowed(undefined, host, []), true);
  assert.equal(originAllowed('https://tasks.example.com', host, []), true);
  assert.equal(originAllowed('http://TASKS.example.com', host, []), true);
  assert.equal(originAllowed('http://localhost:5173', host, []), true);
  assert.equal(originAllowed('http://127.0.0.1:8000', host, []), true);
  assert.equal(originAllowed('http://[::1]:8000', host, []), true);
  for (const bad of ['https://evil.example', 'https://tasks.example.com.evil.example', 'null', '', 'file://', 'localhost', 'https://tasks.example.com:444']) {
    assert.equal(originAllowed(bad, host, []), false, bad);
  }
  assert.equal(originAllowed('http://localhost:5173', undefined, []), true);
});

test('ALLOWED_ORIGINS: exactly the listed origins (plus same-origin), localhost no longer implied', () => {
  const allowed = ['https://app.example.com', 'http://localhost:3000/'];
  assert.equal(originAllowed('https://app.example.com', 'gw:8000', allowed), true);
  assert.equal(originAllowed('http://localhost:3000', 'gw:8000', allowed), true);
  assert.equal(originAllowed('http://localhost:3001', 'gw:8000', allowed), false);
  assert.equal(originAllowed('http://app.example.com', 'gw:8000', allowed), false);
  assert.equal(originAllowed('http://gw:8000', 'gw:8000', allowed), true);
});
