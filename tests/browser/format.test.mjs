// The dashboard's formatting of values for people (host/cli/web/format.js) under
// node's test runner: byte counts in binary units, numbers, timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmt, fmtBytes, fmtField } from '../../host/cli/web/format.js';

test('byte counts in binary units with three significant digits', () => {
  const cases = [
    [0, '0 B'], [1, '1 B'], [1023, '1023 B'], [1023.96, '1.00 KiB'], [12.25, '12.3 B'],
    [1024, '1.00 KiB'], [1536, '1.50 KiB'], [10240, '10.0 KiB'], [102400, '100 KiB'],
    [1048575, '1.00 MiB'], [1048576, '1.00 MiB'], [5 * 2 ** 30, '5.00 GiB'], [2 ** 40 * 3.5, '3.50 TiB'],
    [2 ** 50, '1.00 PiB'], [2 ** 60 * 2, '2.00 EiB'], [2 ** 70, '1024 EiB'],
    [-2048, '-2.00 KiB'], [-204800, '-200 KiB'], [-5, '-5 B'],
    [NaN, 'NaN'], [Infinity, 'Infinity'],
  ];
  for (const [v, want] of cases) assert.equal(fmtBytes(v), want, `fmtBytes(${v})`);
});

test('fields named as byte counts or times are formatted as such', () => {
  assert.equal(fmtField('rss_bytes', 1536), '1.50 KiB');
  assert.equal(fmtField('bytes_read', 2 ** 20), '1.00 MiB');
  assert.equal(fmtField('bytes', 'n/a'), 'n/a', 'only numbers');
  assert.equal(fmtField('count', 1536), '1\u2009536');
  assert.match(fmtField('ts', 1700000000123), /^\d\d:\d\d:\d\d\.123$/);
  assert.equal(fmtField('ts', 5), '5', 'not a plausible ms timestamp');
});

test('numbers: integers grouped, fractions by magnitude', () => {
  assert.equal(fmt(1234567), '1\u2009234\u2009567');
  assert.equal(fmt(1234.5), '1234.50');
  assert.equal(fmt(1.5), '1.5000');
  assert.equal(fmt(0.125), '0.125000');
  assert.equal(fmt('x'), 'x');
  assert.equal(fmt(true), 'true');
  assert.equal(fmt(null), 'null');
});
