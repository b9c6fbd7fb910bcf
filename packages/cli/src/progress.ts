/** Progress for long commands: a redrawn bar on a TTY, a plain line every 10% when piped, nothing with --json. */
export interface Progress {
  /** `etaSeconds` replaces the estimate from elapsed time (a resumed download knows better) */
  update(fraction: number, label: string, etaSeconds?: number): void;
  done(): void;
}

export function createProgress(
  mode: "tty" | "lines" | "none",
  write: (text: string) => void = (t) => process.stderr.write(t),
): Progress {
  if (mode === "none") return { update() {}, done() {} };
  const started = Date.now();
  let lastDecile = -1;
  let lastDraw = 0;
  return {
    update(fraction, label, etaSeconds) {
      const f = Math.min(1, Math.max(0, fraction));
      const elapsed = (Date.now() - started) / 1000;
      const estimate = etaSeconds ?? (f > 0.01 ? (elapsed / f) * (1 - f) : undefined);
      const eta = estimate !== undefined && Number.isFinite(estimate) ? ` ETA ${Math.round(estimate)}s` : "";
      if (mode === "tty") {
        const now = Date.now();
        if (now - lastDraw < 100 && f < 1) return;
        lastDraw = now;
        const width = 30;
        const filled = Math.round(f * width);
        write(
          `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(f * 100).toFixed(0).padStart(3)}%${eta} ${label.slice(0, 40).padEnd(40)}`,
        );
      } else {
        const decile = Math.floor(f * 10);
        if (decile > lastDecile) {
          lastDecile = decile;
          write(`${(decile * 10).toString().padStart(3)}% ${label} (${elapsed.toFixed(1)}s)\n`);
        }
      }
    },
    done() {
      if (mode === "tty") write("\n");
    },
  };
}

export function progressMode(json: boolean): "tty" | "lines" | "none" {
  if (json) return "none";
  return process.stderr.isTTY ? "tty" : "lines";
}
