/** The server's log: plain lines to a sink, filtered by level (Fastify's own logger stays off). */
export const logLevels = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Where log lines go: default stderr, one line each with a timestamp and the level. */
export type LogSink = (level: LogLevel, line: string) => void;

export type Log = (level: LogLevel, line: string) => void;

export const stderrSink: LogSink = (level, line) => {
  process.stderr.write(`${new Date().toISOString()} ${level} ${line}\n`);
};

export function createLog(level: LogLevel, sink: LogSink = stderrSink): Log {
  const most = logLevels.indexOf(level);
  return (l, line) => {
    if (logLevels.indexOf(l) <= most) sink(l, line);
  };
}
