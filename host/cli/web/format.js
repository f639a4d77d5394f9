// How the dashboard writes values for people: numbers with thin-space thousands,
// byte counts in binary units, millisecond timestamps as a time of day.
// Tested under node by tests/browser/format.test.mjs.

/**
 * A value as text: integers grouped by thousands, other numbers with 2 to 6 decimals.
 * @param {*} v
 * @returns {string}
 */
export function fmt(v) {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v.toLocaleString('en-US').replace(/,/g, '\u2009');
    const a = Math.abs(v);
    const digits = a >= 1000 ? 2 : a >= 1 ? 4 : 6;
    return v.toFixed(digits);
  }
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * A byte count in binary units with three significant digits (`1.50 KiB`, `10.0 MiB`,
 * `512 GiB`); below 1 KiB as bytes (`1023 B`). A count that rounds up to 1024 of a
 * unit is written in the next one (`1.00 MiB`, not `1024 KiB`).
 * @param {number} v
 * @returns {string}
 */
export function fmtBytes(v) {
  if (!Number.isFinite(v)) return String(v);
  const sign = v < 0 ? '-' : '';
  const a = Math.abs(v);
  if (Number(a.toFixed(1)) < 1024) return `${sign}${Number(a.toFixed(1))} B`;
  let i = 0;
  let scaled = a;
  while (scaled >= 1024 && i < UNITS.length - 1) {
    scaled /= 1024;
    i++;
  }
  let text = scaled.toFixed(scaled >= 100 ? 0 : scaled >= 10 ? 1 : 2);
  if (Number(text) >= 1024 && i < UNITS.length - 1) {
    i++;
    text = (scaled / 1024).toFixed(2);
  }
  return `${sign}${text} ${UNITS[i]}`;
}

/**
 * A field's value: byte counts (`*_bytes`, `bytes*`) in binary units, millisecond
 * timestamps (`ts`, `*_ms`, `*_at`, `time*`) as a time of day, the rest by {@link fmt}.
 * @param {string} field
 * @param {*} v
 * @returns {string}
 */
export function fmtField(field, v) {
  if (typeof v === 'number' && /(_bytes$|^bytes)/.test(field)) return fmtBytes(v);
  if (typeof v === 'number' && v > 1e12 && v < 1e14 && /(^ts$|_ms$|_at$|^time)/.test(field)) {
    const d = new Date(v);
    return `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }
  return fmt(v);
}
