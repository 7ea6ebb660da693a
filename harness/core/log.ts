import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one root logger. It writes to stderr only (stdout carries results), synchronously so a
 * short-lived CLI does not lose its last lines, and pretty when stderr is a terminal.
 */
export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.HARNESS_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything: the default for library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
