import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisFault } from './redis.ts';

const reply = (message: string) => new ReplyError(message);

describe('redisFault', () => {
  it.each([
    [reply('WRONGPASS invalid username-password pair or user is disabled.'), 'RedisAuthenticationFailed'],
    [reply('NOAUTH Authentication required.'), 'RedisAuthenticationFailed'],
    [reply("NOPERM User aurora has no permissions to run the 'xinfo' command"), 'RedisPermissionDenied'],
    [
      reply("ERR The user executing the script can't run this command or subcommand script: 0195ce3a"),
      'RedisPermissionDenied',
    ],
    [reply('LOADING Redis is loading the dataset in memory'), 'RedisBusy'],
    [reply('BUSY Redis is busy running a script.'), 'RedisBusy'],
    [reply('ERR unknown command'), 'RedisError'],
    [new Error('connect ECONNREFUSED 127.0.0.1:6379'), 'RedisUnreachable'],
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), 'RedisUnreachable'],
  ])('%s is %s', (err, fault) => {
    expect(redisFault(err)).toBe(fault);
  });
});
