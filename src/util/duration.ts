import { InputInvalid } from '../errors.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses `30d`, `24h`, `90m`, `45s`, `2w` into milliseconds.
 * @throws ERR_INPUT_INVALID
 */
export function parseDuration(text: string, field = 'duration'): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (!m) throw new InputInvalid(field, `"${text}" is not a duration like 30d, 24h or 90m`);
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
  if (ms <= 0) throw new InputInvalid(field, `"${text}" must be longer than zero`);
  return ms;
}
