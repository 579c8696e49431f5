import type { Redis, Result } from 'ioredis';

type Arg = string | number;

/** The scripts of src/store/lua, as createRedis defines them on every client (src/store/redis.ts). */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    startTasks(...args: Arg[]): Result<string[][], Context>;
    appendEvents(...args: Arg[]): Result<string[][], Context>;
    claimTasks(...args: Arg[]): Result<string[][], Context>;
    cancelTask(...args: Arg[]): Result<string[], Context>;
    deadLetter(...args: Arg[]): Result<[string, 'FAILED' | 'CORRUPTED' | 'UNTOUCHED'], Context>;
    heartbeat(...args: Arg[]): Result<string[], Context>;
    trimCommands(...args: Arg[]): Result<number, Context>;
    pruneConsumers(...args: Arg[]): Result<string[], Context>;
    promoteScheduled(...args: Arg[]): Result<string[][], Context>;
    maintainSlots(...args: Arg[]): Result<string[], Context>;
  }
}

/**
 * The store's client: one Redis, or a Redis Cluster presented as one (createRedis). Lower store
 * modules take the type from here, so nothing below redis.ts imports it.
 */
export type { Redis };
