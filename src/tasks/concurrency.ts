import { ConfigError } from '../config.js';
import type { SlotLimits } from '../store/slots.js';
import type { TaskRegistry } from '../tasks/registry.js';

/**
 * The concurrency limits of each task type: `concurrency` from its definition, unless
 * TASK_CONCURRENCY (`overrides`) names the type; `concurrencyPerKey` (default 1) for starts with a
 * `concurrency_key`. Throws a ConfigError when an override names a type the registry lacks.
 */
export class ConcurrencyLimits {
  constructor(
    private readonly registry: TaskRegistry,
    private readonly overrides: Readonly<Record<string, number>>,
  ) {
    for (const name of Object.keys(overrides)) {
      if (!registry.get(name)) {
        throw new ConfigError(`invalid configuration:\n  TASK_CONCURRENCY names an unknown task type ${JSON.stringify(name)} (known: ${registry.names().join(', ')})`);
      }
    }
  }

  /** The limits a claim applies to a task of `type` (with `concurrencyKey` if its start gave one); undefined: none. */
  of(type: string, concurrencyKey: string | undefined): SlotLimits | undefined {
    const limit = this.overrides[type] ?? this.registry.get(type)?.concurrency ?? 0;
    if (concurrencyKey === undefined && limit === 0) return undefined;
    return { limit, keyLimit: concurrencyKey === undefined ? 0 : (this.registry.get(type)?.concurrencyPerKey ?? 1) };
  }

  /** The limits of every registered type, for the slots' maintenance (each type may have keyed starts). */
  all(): [string, SlotLimits][] {
    return this.registry.names().map((name) => [name, {
      limit: this.overrides[name] ?? this.registry.get(name)?.concurrency ?? 0,
      keyLimit: this.registry.get(name)?.concurrencyPerKey ?? 1,
    }]);
  }
}
