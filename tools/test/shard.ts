/** One part of a run split by test file, "i/n" as vitest's --shard takes it and the results file records it. */
export interface Shard {
  index: number;
  count: number;
}

/** "i/n" with 1 <= i <= n, else undefined. */
export function parseShard(text: string): Shard | undefined {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  if (match === null) return undefined;
  const [index, count] = [Number(match[1]), Number(match[2])];
  return count >= 1 && index >= 1 && index <= count ? { index, count } : undefined;
}

export const shardName = ({ index, count }: Shard): string => `${index}/${count}`;
