/** examples/README.md lists every example, and each command it gives runs a file that exists. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'examples/README.md'), 'utf8');
const rows = readme.split('\n').filter((line) => /^\| \[`/.test(line));

test('every example folder has a row', () => {
  const folders = readdirSync(join(root, 'examples'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  const listed = rows.map((row) => /^\| \[`([^/`]+)/.exec(row)![1]);
  expect(listed.sort()).toEqual(folders.sort());
});

test("each row's link and command name files that exist", () => {
  for (const row of rows) {
    const link = /\]\(([^)]+)\)/.exec(row)![1]!;
    expect(existsSync(join(root, 'examples', link)), link).toBe(true);
    const command = /\| `([^`]+)` \|/.exec(row)![1]!;
    const file = /(?:node|vitest run) (\S+)/.exec(command)![1]!;
    expect(existsSync(join(root, file)), `${command}: ${file}`).toBe(true);
  }
});
