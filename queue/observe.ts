// Reading a category stream's state without its entries: a Lua script runs inside Redis and returns
// only counts, IDs and the server's clock, so no entry's fields ever cross the connection.
import type { Redis } from 'ioredis';

/**
 * One stream, as the script returns it. Counters are since the stream was created (Redis 7), or counted
 * between the IDs the caller saw last (before Redis 7, or when Redis cannot keep them after deletions).
 */
export type StreamState =
  | { exists: false; serverTimeMs: number }
  | { exists: true; notAStream: true; serverTimeMs: number }
  | {
      exists: true;
      notAStream?: undefined;
      serverTimeMs: number;
      length: number;
      lastGeneratedId: string;
      /** Entries ever added (Redis 7); undefined before. */
      entriesAdded?: number;
      /** Entries added after the lastGeneratedId passed in, when entriesAdded is not kept. */
      addedSince?: number;
      /** The ID of the first entry added after the lastGeneratedId passed in. */
      firstAddedSinceId?: string;
      group?: {
        /** Delivered and not acknowledged. */
        pending: number;
        lastDeliveredId: string;
        /** Entries ever delivered to the group (Redis 7); undefined before. */
        entriesRead?: number;
        /** Entries delivered after the lastDeliveredId passed in, when entriesRead is not kept. */
        deliveredSince?: number;
        /** Entries not yet delivered. */
        depth: number;
        /** depth reached the counting cap: at least this many. */
        depthCapped: boolean;
        /** The ID of the first entry not yet delivered, if any. */
        firstUndeliveredId?: string;
        /** The ID of the oldest entry delivered and not acknowledged, if any. */
        oldestPendingId?: string;
        /** Entries each consumer holds unacknowledged. */
        inFlight: Map<string, number>;
        /** Consumers that read from the stream within the active window (dead ones drop out). */
        activeConsumers: string[];
      };
    };

// KEYS[1] the stream; ARGV: group, last generated ID seen before ('' none), last delivered ID seen
// before ('' none), '1' to count as Redis before 7 must, the most entries one count may walk, and the
// milliseconds within which a consumer's last read makes it active.
export const streamStateScript = `
local key, group = KEYS[1], ARGV[1]
local prevGenerated, prevDelivered = ARGV[2], ARGV[3]
local forceCount, cap, activeMs = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', key) == 0 then return {now, 0} end
if redis.call('TYPE', key).ok ~= 'stream' then return {now, -1} end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
-- Everything after an ID: an exclusive range (Redis 6.2+), exact for any sequence number.
local function after(id)
  return '(' .. id
end
-- Entries after fromExclusive up to toInclusive, walked in pages, at most cap.
local function countRange(fromExclusive, toInclusive)
  local n, start = 0, after(fromExclusive)
  while n < cap do
    local page = math.min(1000, cap - n)
    local batch = redis.call('XRANGE', key, start, toInclusive, 'COUNT', page)
    n = n + #batch
    if #batch < page then break end
    start = after(batch[#batch][1])
  end
  return n
end
local info = redis.call('XINFO', 'STREAM', key)
local length, generated, added = field(info, 'length'), field(info, 'last-generated-id'), field(info, 'entries-added')
local addedSince = -1
if (not added or forceCount) and prevGenerated ~= '' then addedSince = countRange(prevGenerated, generated) end
if forceCount then added = nil end
-- The first entry since the caller last looked: when a burst began.
local firstAdded = ''
if prevGenerated ~= '' and prevGenerated ~= generated then
  local r = redis.call('XRANGE', key, after(prevGenerated), '+', 'COUNT', 1)
  if r[1] then firstAdded = r[1][1] end
end
local g
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  if field(flat, 'name') == group then g = flat end
end
if not g then return {now, 1, length, generated, added or -1, addedSince, firstAdded, 0} end
local pending, delivered = field(g, 'pending'), field(g, 'last-delivered-id')
local read, lag = field(g, 'entries-read'), field(g, 'lag')
if forceCount then read, lag = nil, nil end
local depth, capped = lag, 0
if not depth then
  depth = countRange(delivered, '+')
  if depth >= cap then capped = 1 end
end
local first = redis.call('XRANGE', key, after(delivered), '+', 'COUNT', 1)
local firstUndelivered = ''
if first[1] then firstUndelivered = first[1][1] end
local deliveredSince = -1
if not read and prevDelivered ~= '' then deliveredSince = countRange(prevDelivered, delivered) end
local summary = redis.call('XPENDING', key, group)
local oldestPending = summary[2] or ''
local consumers = {}
if summary[4] then
  for _, c in ipairs(summary[4]) do
    consumers[#consumers + 1] = c[1]
    consumers[#consumers + 1] = c[2]
  end
end
local active = {}
for _, flat in ipairs(redis.call('XINFO', 'CONSUMERS', key, group)) do
  if tonumber(field(flat, 'idle')) <= activeMs then active[#active + 1] = field(flat, 'name') end
end
return {now, 1, length, generated, added or -1, addedSince, firstAdded, 1, pending, delivered,
  read or -1, deliveredSince, depth, capped, firstUndelivered, oldestPending, consumers, active}
`;

/** The most entries one count walks inside Redis (a script blocks the server while it runs). */
export const countCap = 10_000;
/**
 * A consumer that read within this long is serving. Consumers block on empty streams for a second at a
 * time, so a live one always reads more often than this; a dead one drops out after it.
 */
export const activeConsumerMs = 5_000;

type Reply = (number | string | (string | number)[])[];

const num = (v: unknown) => Number(v);
const optional = (v: unknown) => (num(v) >= 0 ? num(v) : undefined);
const optionalId = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export function parseStreamState(reply: Reply): StreamState {
  const serverTimeMs = num(reply[0]);
  if (num(reply[1]) === 0) return { exists: false, serverTimeMs };
  if (num(reply[1]) === -1) return { exists: true, notAStream: true, serverTimeMs };
  const base = {
    exists: true as const,
    serverTimeMs,
    length: num(reply[2]),
    lastGeneratedId: String(reply[3]),
    ...(optional(reply[4]) !== undefined ? { entriesAdded: optional(reply[4]) } : {}),
    ...(optional(reply[5]) !== undefined ? { addedSince: optional(reply[5]) } : {}),
    ...(optionalId(reply[6]) ? { firstAddedSinceId: optionalId(reply[6]) } : {}),
  };
  if (num(reply[7]) === 0) return base;
  const flat = (reply[16] ?? []) as (string | number)[];
  const inFlight = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) inFlight.set(String(flat[i]), num(flat[i + 1]));
  const entriesRead = optional(reply[10]);
  const deliveredSince = optional(reply[11]);
  const firstUndeliveredId = optionalId(reply[14]);
  const oldestPendingId = optionalId(reply[15]);
  return {
    ...base,
    group: {
      pending: num(reply[8]),
      lastDeliveredId: String(reply[9]),
      ...(entriesRead !== undefined ? { entriesRead } : {}),
      ...(deliveredSince !== undefined ? { deliveredSince } : {}),
      depth: num(reply[12]),
      depthCapped: num(reply[13]) === 1,
      ...(firstUndeliveredId ? { firstUndeliveredId } : {}),
      ...(oldestPendingId ? { oldestPendingId } : {}),
      inFlight,
      activeConsumers: ((reply[17] ?? []) as (string | number)[]).map(String),
    },
  };
}

/** What the caller saw last of a stream, so counts can be taken between then and now without Redis 7. */
export interface StreamCursor {
  lastGeneratedId?: string;
  lastDeliveredId?: string;
}

const commandName = 'auroraStreamState';
type WithStreamState = Redis & {
  [commandName]: (key: string, ...args: string[]) => Promise<Reply>;
};

/**
 * The state of each stream, one script call per stream in one round trip (each call names one key, so
 * it works on a Redis Cluster too). `legacyCounts` counts as Redis before 7 must (for tests).
 */
export async function readStreams(
  client: Redis,
  group: string,
  streams: readonly { key: string; cursor?: StreamCursor }[],
  options: { legacyCounts?: boolean } = {},
): Promise<StreamState[]> {
  // ioredis sends EVALSHA and loads the script when Redis does not have it (first use, a restart).
  if (!(commandName in client))
    client.defineCommand(commandName, { numberOfKeys: 1, lua: streamStateScript });
  const pipeline = client.pipeline() as unknown as WithStreamState & {
    exec(): ReturnType<ReturnType<Redis['pipeline']>['exec']>;
  };
  for (const s of streams) {
    pipeline[commandName](
      s.key,
      group,
      s.cursor?.lastGeneratedId ?? '',
      s.cursor?.lastDeliveredId ?? '',
      options.legacyCounts ? '1' : '0',
      String(countCap),
      String(activeConsumerMs),
    );
  }
  const results = await pipeline.exec();
  if (!results) throw new Error('Redis returned nothing for the pipeline');
  return results.map(([err, reply]) => {
    if (err) throw err;
    return parseStreamState(reply as Reply);
  });
}
