// The triage server as a CareQueue consumer: reads the category streams highest acuity first through the
// consumer group, classifies in micro-batches, writes each result to the results stream and acknowledges
// the entry. At least once: an entry is acknowledged only after its result is written, and one held by
// a consumer that died is claimed by another after the idle time. Entries' values are never logged.
import type { Redis } from 'ioredis';
import { entryFields, resultFields } from '../../queue/contract.ts';

export interface ConsumerStream {
  category: string;
  streamKey: string;
}

/** One entry as read: its stream (index in the streams list), ID and fields. */
interface HeldEntry {
  stream: number;
  id: string;
  fields: string[];
  /** Delivered so often without being served that it is answered with an error rather than tried again. */
  givenUp?: boolean;
}

/** The model failed on a batch: its entries stay pending and are served again. */
export class ModelFault extends Error {}

/** A category's key holds something other than a stream: that category is skipped until it is mended. */
export class NotAStreamFault extends Error {
  readonly category: string;
  constructor(category: string) {
    super(`the key of ${category} is not a stream: that category is skipped`);
    this.category = category;
  }
}

/** What classifying one entry gave: probabilities in label order, or why the entry could not be used. */
export type EntryOutcome = { probabilities: number[] } | { error: string };

export interface ConsumerOptions {
  client: Redis;
  streams: readonly ConsumerStream[];
  group: string;
  consumer: string;
  resultStreamKey: string;
  resultMaxLength: number;
  claimIdleMs: number;
  batchSize: number;
  labels: readonly string[];
  modelVersion: string;
  modelDigest: string;
  /** Turns entries' features (parsed JSON, untrusted) into outcomes; throws when the model fails. */
  classify(features: unknown[]): Promise<EntryOutcome[]>;
  /** How long a read waits for an entry when every stream is empty. */
  blockMs?: number;
  /**
   * An entry delivered more often than this (its batch failed each time) is answered with an error and
   * acknowledged, so one entry cannot hold a batch and the claims behind it for ever. Default 5.
   */
  maxDeliveries?: number;
  /**
   * The most entries this consumer serves a second (0: as fast as the model goes), for a downstream
   * that must not be written faster. A batch is then at most a second's worth, and is acknowledged no
   * sooner than its share of the second.
   */
  maxEntriesPerSecond?: number;
  /**
   * Batches served at once (each read, classified and written in turn): while one waits on Redis another
   * runs the model. Entries are still read highest acuity first. 1 when paced.
   */
  lanes?: number;
  onBatch?(counts: { category: string; outcome: 'classified' | 'rejected' }[]): void;
  onError?(err: Error): void;
}

// Reads up to ARGV[3] new entries for consumer ARGV[2] of group ARGV[1], from the streams in KEYS in
// order, so a lower category is read only when every higher one is empty. A stream whose group is
// missing, or a key that is not a stream, is reported, not fatal. Inside Redis, so the order costs one
// round trip.
const readByAcuityScript = `
local out, missing, bad, left = {}, {}, {}, tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if left <= 0 then break end
  local ok, reply = pcall(redis.call, 'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', key, '>')
  if not ok then
    local message = type(reply) == 'table' and reply.err or tostring(reply)
    if string.find(message, 'NOGROUP', 1, true) then missing[#missing + 1] = i else bad[#bad + 1] = i end
  elseif reply then
    for _, entry in ipairs(reply[1][2]) do
      out[#out + 1] = {i, entry[1], entry[2]}
      left = left - 1
    end
  end
end
return {missing, out, bad}
`;
const readCommand = 'auroraReadByAcuity';

// Writes each result to KEYS[1] (trimmed to about ARGV[2]) and then acknowledges the entries in the
// category streams KEYS[2..] for group ARGV[1]. ARGV[3..] holds, per entry: its stream (index into
// KEYS), its ID, the number of result fields, the fields. One round trip, and no entry is acknowledged
// before its result is written.
const writeAndAckScript = `
local group, maxlen = ARGV[1], ARGV[2]
local acks, i = {}, 3
while i <= #ARGV do
  local s, id, n = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 3, i + 2 + n))
  acks[s] = acks[s] or {}
  acks[s][#acks[s] + 1] = id
  i = i + 3 + n
end
for s, ids in pairs(acks) do
  for k = 1, #ids, 1000 do
    redis.call('XACK', KEYS[s], group, unpack(ids, k, math.min(k + 999, #ids)))
  end
end
return 1
`;
const writeCommand = 'auroraWriteAndAck';

type RawEntries = [number, string, string[]][];

export function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

export function startQueueConsumer(options: ConsumerOptions) {
  const { client, streams, group, consumer } = options;
  const keys = streams.map((s) => s.streamKey);
  const blockMs = options.blockMs ?? 1_000;
  const maxDeliveries = options.maxDeliveries ?? 5;
  const pace = options.maxEntriesPerSecond ?? 0;
  const batchSize = pace > 0 ? Math.max(1, Math.min(options.batchSize, Math.floor(pace))) : options.batchSize;
  const withCommands = (conn: Redis) => {
    // A lazy connection is opened now, so the first read does not fail for want of it.
    if (conn.status === 'wait') void conn.connect().catch(() => {});
    if (!(readCommand in conn)) conn.defineCommand(readCommand, { lua: readByAcuityScript });
    if (!(writeCommand in conn)) conn.defineCommand(writeCommand, { lua: writeAndAckScript });
    return conn;
  };
  withCommands(client);
  let stopping = false;
  let lastClaimAt = 0;
  const counts = { classified: 0, rejected: 0, claimed: 0 };
  /** Keys that hold something other than a stream: that category is skipped, the others served. */
  const unusable = new Set<number>();
  const usable = () => keys.flatMap((key, i) => (unusable.has(i) ? [] : [{ i, key }]));

  /** Creates the group at the start of each stream (entries already there are patients waiting too). */
  const ensureGroups = async (conn: Redis = client) => {
    unusable.clear();
    for (const [i, key] of keys.entries()) {
      await conn.xgroup('CREATE', key, group, '0', 'MKSTREAM').catch((err: Error) => {
        if (/BUSYGROUP/.test(err.message)) return;
        if (!/WRONGTYPE/.test(err.message)) throw err;
        unusable.add(i);
        options.onError?.(new NotAStreamFault(streams[i]?.category ?? ''));
      });
    }
  };

  const toHeld = (stream: number, raw: [string, string[]][] | null | undefined): HeldEntry[] =>
    (raw ?? []).filter(([, fields]) => fields !== null).map(([id, fields]) => ({ stream, id, fields }));

  /**
   * Entries this consumer held before it restarted under the same name (as many as its lanes held),
   * highest acuity first, a batch at a time: each page is served before the next is read.
   */
  const serveOwnPending = async () => {
    for (const { i, key } of usable()) {
      let after = '0';
      for (;;) {
        const reply = (await client.xreadgroup(
          'GROUP',
          group,
          consumer,
          'COUNT',
          batchSize,
          'STREAMS',
          key,
          after,
        )) as [string, [string, string[]][]][] | null;
        const page = reply?.[0]?.[1] ?? [];
        await serve(client, toHeld(i, page));
        const last = page.at(-1)?.[0];
        if (page.length < batchSize || last === undefined) break;
        after = last;
      }
    }
  };

  /** Entries left pending by a consumer that died, highest acuity first. */
  const claimAbandoned = async (): Promise<HeldEntry[]> => {
    const held: HeldEntry[] = [];
    for (const { i, key } of usable()) {
      if (held.length >= batchSize) break;
      const reply = (await client.xautoclaim(
        key,
        group,
        consumer,
        options.claimIdleMs,
        '0-0',
        'COUNT',
        batchSize - held.length,
      )) as [string, [string, string[]][]];
      const claimed = toHeld(i, reply[1]);
      if (claimed.length > 0) {
        // How often each was delivered (a claim counts as one more), ID by ID: other lanes of this
        // consumer hold entries in the same range.
        const lookups = client.pipeline();
        for (const entry of claimed) lookups.xpending(key, group, entry.id, entry.id, 1);
        const replies = (await lookups.exec()) ?? [];
        claimed.forEach((entry, k) => {
          const row = (replies[k]?.[1] as [string, string, number, number][] | undefined)?.[0];
          if (row && Number(row[3]) > maxDeliveries) entry.givenUp = true;
        });
      }
      held.push(...claimed);
    }
    counts.claimed += held.length;
    return held;
  };

  /** New entries by acuity; when there are none, blocks (on this lane's own connection) for the next. */
  const readNew = async (conn: Redis): Promise<HeldEntry[]> => {
    const scripted = conn as unknown as Record<
      typeof readCommand,
      (...args: (string | number)[]) => Promise<[number[], RawEntries, number[]]>
    >;
    const reading = usable();
    if (reading.length === 0) {
      await new Promise((r) => setTimeout(r, blockMs));
      await ensureGroups(conn);
      return [];
    }
    const readKeys = reading.map((r) => r.key);
    const [missing, raw, bad] = await scripted[readCommand](
      readKeys.length,
      ...readKeys,
      group,
      consumer,
      batchSize,
    );
    for (const b of bad ?? []) {
      const stream = reading[b - 1];
      if (stream && !unusable.has(stream.i)) {
        unusable.add(stream.i);
        options.onError?.(new NotAStreamFault(streams[stream.i]?.category ?? ''));
      }
    }
    if (missing.length > 0) await ensureGroups(conn);
    if (raw.length > 0) return raw.map(([i, id, fields]) => ({ stream: reading[i - 1]?.i ?? 0, id, fields }));
    if ((bad ?? []).length > 0) return [];
    // Every stream is empty: wait for the next entry in any of them.
    const reply = (await conn.xreadgroup(
      'GROUP',
      group,
      consumer,
      'COUNT',
      1,
      'BLOCK',
      blockMs,
      'STREAMS',
      ...readKeys,
      ...readKeys.map(() => '>'),
    )) as [string, [string, string[]][]][] | null;
    return (reply ?? []).flatMap(([key, entries]) => toHeld(keys.indexOf(key), entries));
  };

  /** Classifies what is held, writes each result, then acknowledges: nothing is acknowledged unwritten. */
  const serve = async (conn: Redis, held: HeldEntry[]) => {
    if (held.length === 0) return;
    const startedAt = performance.now();
    const parsed = held.map((e): { features: unknown } | { error: string } => {
      if (e.givenUp) return { error: `not classified after ${maxDeliveries} deliveries` };
      const text = fieldOf(e.fields, entryFields.features);
      if (text === undefined) return { error: `${entryFields.features}: required` };
      try {
        return { features: JSON.parse(text) };
      } catch {
        return { error: `${entryFields.features}: must be a JSON object` };
      }
    });
    const usable = parsed.flatMap((p) => ('features' in p ? [p.features] : []));
    const outcomes = usable.length > 0 ? await options.classify(usable) : [];
    if (pace > 0) {
      const dueMs = (held.length / pace) * 1000 - (performance.now() - startedAt);
      if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs));
    }
    let next = 0;
    const report: { category: string; outcome: 'classified' | 'rejected' }[] = [];
    // Only the streams this batch came from are named, so the script's keys are exactly those touched.
    const streamSlot = new Map<number, number>();
    const args: (string | number)[] = [group, options.resultMaxLength];
    for (const [i, entry] of held.entries()) {
      const p = parsed[i];
      const outcome: EntryOutcome =
        p && 'error' in p ? { error: p.error } : (outcomes[next++] ?? { error: 'no outcome' });
      const category = streams[entry.stream]?.category ?? '';
      const ref = fieldOf(entry.fields, entryFields.ref);
      const fields = [resultFields.entry, entry.id, resultFields.category, category];
      if (ref !== undefined) fields.push(resultFields.ref, ref);
      if ('error' in outcome) {
        fields.push(resultFields.error, outcome.error);
        report.push({ category, outcome: 'rejected' });
      } else {
        const best = outcome.probabilities.indexOf(Math.max(...outcome.probabilities));
        fields.push(
          resultFields.label,
          options.labels[best] ?? '',
          resultFields.probabilities,
          JSON.stringify(Object.fromEntries(options.labels.map((l, j) => [l, outcome.probabilities[j]]))),
          resultFields.modelVersion,
          options.modelVersion,
          resultFields.modelDigest,
          options.modelDigest,
        );
        report.push({ category, outcome: 'classified' });
      }
      let slot = streamSlot.get(entry.stream);
      if (slot === undefined) {
        slot = streamSlot.size + 2;
        streamSlot.set(entry.stream, slot);
      }
      args.push(slot, entry.id, fields.length, ...fields);
    }
    const scriptKeys = [
      options.resultStreamKey,
      ...[...streamSlot.keys()].map((stream) => keys[stream] ?? ''),
    ];
    const scripted = conn as unknown as Record<
      typeof writeCommand,
      (...args: (string | number)[]) => Promise<number>
    >;
    await scripted[writeCommand](scriptKeys.length, ...scriptKeys, ...args);
    for (const r of report) counts[r.outcome]++;
    options.onBatch?.(report);
  };

  const lanes = pace > 0 ? 1 : Math.max(1, options.lanes ?? 1);
  // Each lane blocks on its own connection: a blocked read holds its connection, and a lane that shared
  // it would wait to write its results until the read ended.
  const connections = [
    client,
    ...Array.from({ length: lanes - 1 }, () => {
      const conn = client.duplicate();
      // Failures show in the commands that fail; the connection's own events would go to stderr.
      conn.on('error', () => {});
      return withCommands(conn);
    }),
  ];
  const retrying = async (step: () => Promise<void>) => {
    let backoffMs = 100;
    while (!stopping) {
      try {
        await step();
        return;
      } catch (err) {
        options.onError?.(err as Error);
        if (stopping) return;
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    }
  };
  const loop = async (lane: number) => {
    const conn = connections[lane] ?? client;
    while (!stopping) {
      await retrying(async () => {
        // The first lane claims entries abandoned by consumers that died.
        const now = performance.now();
        if (lane === 0 && now - lastClaimAt > options.claimIdleMs / 2) {
          lastClaimAt = now;
          // A key that was not a stream may have been mended (deleted, then added to as a stream).
          if (unusable.size > 0) await ensureGroups(conn);
          await serve(conn, await claimAbandoned());
        }
        await serve(conn, await readNew(conn));
      });
    }
  };
  const running = (async () => {
    // What this consumer held before a restart is served before any lane reads anew: a lane reading
    // under the same name meanwhile would be served twice.
    await retrying(async () => {
      await ensureGroups();
      await serveOwnPending();
    });
    lastClaimAt = performance.now();
    await Promise.all(Array.from({ length: lanes }, (_, lane) => loop(lane)));
  })().finally(() => {
    for (const conn of connections.slice(1)) conn.disconnect();
  });

  return {
    counts,
    /** Stops reading; what is held is served and acknowledged first (the read in progress ends within blockMs). */
    async stop() {
      stopping = true;
      await running;
    },
  };
}

export type QueueConsumer = ReturnType<typeof startQueueConsumer>;
