import type { IncomingMessage } from 'node:http';
import type { Auth } from '../auth/auth.js';
import { authorizeFeed, authorizeWatch } from '../auth/watch-auth.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { clientAddress } from '../http/client-address.js';
import { originAllowed } from './origin.js';

export interface UpgradeGuardDeps {
  auth: Auth;
  config: Pick<Config, 'ALLOWED_ORIGINS' | 'WS_MAX_PER_IP' | 'WS_MAX_TOTAL' | 'TRUST_PROXY_HOPS'>;
}

/** An admitted socket's slot; release() is idempotent and must run when the socket closes. */
export interface Admission {
  readonly address: string;
  release(): void;
}

/**
 * Everything checked before a watch socket is upgraded, cheapest first: Origin (403), token
 * (401), then the WS_MAX_TOTAL and WS_MAX_PER_IP slots (503 with Retry-After).
 */
export class UpgradeGuard {
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(private readonly deps: UpgradeGuardDeps) {}

  get open(): number {
    return this.total;
  }

  /**
   * `target`: a task's watch (its raw id from the path), or a feed (its raw `?tag`, undefined for all tasks);
   * undefined for `/ws`, whose subscriptions are checked one by one.
   */
  admit(req: IncomingMessage, target: { taskId: string } | { tag: string | undefined } | undefined, query: URLSearchParams): Admission {
    const { config, auth } = this.deps;
    if (!originAllowed(req.headers.origin, req.headers.host, config.ALLOWED_ORIGINS)) {
      throw new AppError('FORBIDDEN_ORIGIN', 'origin not allowed');
    }
    const creds = { authorization: req.headers.authorization, queryToken: query.get('token') };
    if (target !== undefined && 'taskId' in target) authorizeWatch(auth, { taskId: target.taskId, ...creds });
    else if (target !== undefined) authorizeFeed(auth, { tag: target.tag, ...creds });
    const address = clientAddress(req, config.TRUST_PROXY_HOPS);
    const mine = this.perAddress.get(address) ?? 0;
    if (this.total >= config.WS_MAX_TOTAL || mine >= config.WS_MAX_PER_IP) {
      const which = this.total >= config.WS_MAX_TOTAL ? 'gateway' : 'client address';
      throw new AppError('TOO_MANY_CONNECTIONS', `too many open watch sockets for this ${which}`, undefined, {
        'Retry-After': '5',
      });
    }
    this.total += 1;
    this.perAddress.set(address, mine + 1);
    let released = false;
    return {
      address,
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left === 0) this.perAddress.delete(address);
        else this.perAddress.set(address, left);
      },
    };
  }
}
