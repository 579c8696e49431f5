import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { PROBE_PATHS } from '../health/probes.js';
import { probeReplySchema } from './api-schemas.js';
import { errors, json, register } from './openapi-parts.js';

/** The operations routes in the OpenAPI document: the probes, this document, the docs page and /metrics. */
export function registerMeta(api: OpenAPIRegistry): void {
  for (const path of PROBE_PATHS) {
    const live = path === '/livez';
    register(api, {
      method: 'get',
      path,
      tags: ['meta'],
      summary: live ? 'Liveness: the process answers' : `Readiness${path === '/healthz' ? ' (alias of /readyz)' : ''}`,
      description: live
        ? 'Always 200 while the process runs.'
        : 'Ready: Redis answers PING, the `workers` consumer group exists, and the process is not draining for ' +
          'shutdown. Workers serve the same probes on HEALTH_PORT.',
      responses: {
        200: json(probeReplySchema, live ? 'Alive.' : 'Ready.'),
        ...(live ? {} : { 503: json(probeReplySchema, 'Not ready; `checks` says why.') }),
      },
    }, false);
  }

  register(api, {
    method: 'get',
    path: '/openapi.json',
    tags: ['meta'],
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } },
  });
  register(api, {
    method: 'get',
    path: '/docs',
    tags: ['meta'],
    summary: 'Interactive API documentation (Swagger UI, served locally)',
    responses: { 200: { description: 'HTML page.', content: { 'text/html': { schema: { type: 'string' } } } } },
  });
  register(api, {
    method: 'get',
    path: '/docs/{file}',
    tags: ['meta'],
    summary: 'Assets of the documentation page',
    request: { params: z.object({ file: z.string() }) },
    responses: {
      200: { description: 'A script, style sheet or image of the page.' },
      ...errors(404),
    },
  });
  register(api, {
    method: 'get',
    path: '/metrics',
    tags: ['meta'],
    summary: 'Prometheus metrics',
    responses: {
      200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } },
    },
  });
}
