/** Types of the `cluster-key-slot` package (it ships none): Redis Cluster's CRC16 hash slot of a key. */
declare module 'cluster-key-slot' {
  /** The slot (0..16383) of `key`, from its first non-empty `{...}` hash tag when it has one. */
  export default function calculateSlot(key: string): number;
}
