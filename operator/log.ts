import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Objects are referred to by kind and namespace/name only: spec and status values
 * never go into a log line, so nothing a resource carries about patients can leak through it.
 */
export function createLogger(
  options: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const settings = {
    name: options.name ?? 'aurora',
    level: options.level ?? process.env.AURORA_LOG_LEVEL ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A logger that drops everything, for unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
