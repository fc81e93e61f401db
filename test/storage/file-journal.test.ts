/**
 * src/storage/file-journal.ts: the file adapter's on-disk formats (snapshot
 * and journal lines), encoded and parsed as bytes, without touching a disk.
 */
import { describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/document/json.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { StorageError } from '../../src/errors.js';
import {
  JOURNAL_FORMAT,
  decodeOwnChange,
  encodeChange,
  encodeHeader,
  encodeMarker,
  encodeSnapshot,
  parseJournal,
  parseSnapshot,
  sha256Hex,
  startupError,
  type JournalContext,
  type SnapshotRef,
} from '../../src/storage/file-journal.js';

const context: JournalContext = { journalPath: '/srv/data/store.json.journal', snapshotPath: '/srv/data/store.json' };

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

const snapshotAt12: SnapshotRef = { revision: 12, sha256: sha256Hex(bytes('{}\n')) };

/** Parses a journal expected to be damaged; returns the error for closer checks. */
function damaged(journal: Uint8Array | string): StorageError {
  let caught: unknown;
  try {
    parseJournal(typeof journal === 'string' ? bytes(journal) : journal, context);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StorageError);
  const error = caught as StorageError;
  expect(error.code).toBe('storage-unavailable');
  expect(error.status).toBe(503);
  return error;
}

/** The server-side message for a damaged line, as the adapter words it. */
function damagedMessage(line: number, reason: string): string {
  return (
    `Line ${line} of /srv/data/store.json.journal is damaged: ${reason}. The store did not start and changed no file. ` +
    'The journal holds the changes made since /srv/data/store.json was last written: repair that line, ' +
    'or move the journal away to start from /srv/data/store.json alone (losing those changes)'
  );
}

const changes: Array<[number, PatchOperation[]]> = [
  [13, [{ op: 'replace', path: '/a', value: 1 }]],
  [
    14,
    [
      { op: 'add', path: '/list/0', value: { text: 'line\nbreak', uni: 'é😀\u2028' } },
      { op: 'remove', path: '/old' },
    ],
  ],
  [15, [{ op: 'move', from: '/x', path: '/a~1b/m~0n' }, { op: 'copy', from: '/y', path: '/__proto__' }]],
];

describe('sha256Hex', () => {
  test('matches the FIPS 180-2 test vectors', () => {
    expect(sha256Hex(bytes('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new Uint8Array())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('encoding', () => {
  test('each record is exactly one line, whatever the values hold', () => {
    const lines = [encodeHeader(snapshotAt12), ...changes.map(([revision, ops]) => encodeChange(revision, ops)), encodeMarker({ revision: 15, sha256: snapshotAt12.sha256 })];
    for (const line of lines) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.indexOf('\n')).toBe(line.length - 1);
    }
  });

  test('the header names the format and the snapshot', () => {
    expect(encodeHeader(snapshotAt12)).toBe(`{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":12,"sha256":"${snapshotAt12.sha256}"}}\n`);
    expect(JOURNAL_FORMAT).toBe('express-jsonstore journal 1');
  });

  test('a change and a marker', () => {
    expect(encodeChange(13, [{ op: 'remove', path: '/a' }])).toBe('{"revision":13,"ops":[{"op":"remove","path":"/a"}]}\n');
    expect(encodeMarker({ revision: 40, sha256: 'f'.repeat(64) })).toBe(`{"snapshot":{"revision":40,"sha256":"${'f'.repeat(64)}"}}\n`);
  });

  test('decodeOwnChange reads back the operations of a change line', () => {
    for (const [revision, ops] of changes) {
      expect(decodeOwnChange(encodeChange(revision, ops).trimEnd())).toEqual(ops);
      expect(decodeOwnChange(encodeChange(revision, ops))).toEqual(ops);
    }
  });
});

describe('parseJournal: round trips', () => {
  test('header, changes and a marker come back as written, with line numbers', () => {
    const marker: SnapshotRef = { revision: 14, sha256: 'a'.repeat(64) };
    const text =
      encodeHeader(snapshotAt12) +
      encodeChange(13, changes[0]![1]) +
      encodeChange(14, changes[1]![1]) +
      encodeMarker(marker) +
      encodeChange(15, changes[2]![1]);
    const parsed = parseJournal(bytes(text), context);
    expect(parsed.header).toEqual(snapshotAt12);
    expect(parsed.records).toEqual([
      { kind: 'change', line: 2, revision: 13, ops: changes[0]![1] },
      { kind: 'change', line: 3, revision: 14, ops: changes[1]![1] },
      { kind: 'marker', line: 4, snapshot: marker },
      { kind: 'change', line: 5, revision: 15, ops: changes[2]![1] },
    ]);
    expect(parsed.lastRevision).toBe(15);
    expect(parsed.completeLength).toBe(Buffer.byteLength(text));
    expect(parsed.tornLength).toBe(0);
  });

  test('strings that are not valid UTF-16 survive the round trip (JSON.stringify escapes lone surrogates)', () => {
    const ops: PatchOperation[] = [{ op: 'add', path: '/\uD800', value: 'x\uDC00y\uD83D' }];
    const text = encodeHeader(snapshotAt12) + encodeChange(13, ops);
    expect(text).toContain('\\ud800');
    const [record] = parseJournal(bytes(text), context).records;
    expect(record).toEqual({ kind: 'change', line: 2, revision: 13, ops });
  });

  test('lengths count bytes, not characters', () => {
    const text = encodeHeader(snapshotAt12) + encodeChange(13, [{ op: 'add', path: '/é', value: '😀😀😀' }]);
    expect(Buffer.byteLength(text)).toBeGreaterThan(text.length);
    expect(parseJournal(bytes(text), context).completeLength).toBe(Buffer.byteLength(text));
  });

  test('a header alone: no records, the last revision is the header\'s', () => {
    const parsed = parseJournal(bytes(encodeHeader(snapshotAt12)), context);
    expect(parsed).toEqual({
      header: snapshotAt12,
      idempotency: [],
      records: [],
      completeLength: encodeHeader(snapshotAt12).length,
      tornLength: 0,
      lastRevision: 12,
    });
  });

  test('idempotency records: in the header and on change lines; a malformed one is dropped, not fatal', () => {
    const record = { key: 'k1', fingerprint: 'f', revision: 12, at: 1_700_000_000_000, status: 201, etag: '"e"', location: '/items/0' };
    const later = { key: 'k2', fingerprint: 'g', revision: 13, at: 1_700_000_000_001, status: 204 };
    const text =
      encodeHeader(snapshotAt12, [record]) +
      encodeChange(13, [{ op: 'add', path: '/a', value: 1 }], later) +
      JSON.stringify({ revision: 14, ops: [], idempotency: { key: '', status: 'no' } }) +
      '\n';
    const parsed = parseJournal(bytes(text), context);
    expect(parsed.idempotency).toEqual([record]);
    expect(parsed.records.map((r) => (r.kind === 'change' ? r.idempotency : undefined))).toEqual([later, undefined]);
    expect(parsed.lastRevision).toBe(14);
    // What a reader without records sees: the same header and change members as before.
    expect(JSON.parse(encodeHeader(snapshotAt12, [record]))).toMatchObject({ format: JOURNAL_FORMAT, snapshot: snapshotAt12 });
  });

  test('a header at revision 0 (a new store) is followed by revision 1', () => {
    const header: SnapshotRef = { revision: 0, sha256: sha256Hex(bytes('{}\n')) };
    const parsed = parseJournal(bytes(encodeHeader(header) + encodeChange(1, [{ op: 'add', path: '/a', value: 1 }])), context);
    expect(parsed.lastRevision).toBe(1);
  });

  test('markers may name any revision from the header\'s to the last change', () => {
    const base = encodeHeader(snapshotAt12) + encodeChange(13, []) + encodeChange(14, []);
    for (const revision of [12, 13, 14]) {
      const parsed = parseJournal(bytes(base + encodeMarker({ revision, sha256: 'b'.repeat(64) })), context);
      expect(parsed.records[2]).toEqual({ kind: 'marker', line: 4, snapshot: { revision, sha256: 'b'.repeat(64) } });
      expect(parsed.lastRevision).toBe(14);
    }
  });

  test('operations are validated but kept as written (pointers at the root)', () => {
    const ops: PatchOperation[] = [{ op: 'replace', path: '', value: { whole: true } }, { op: 'test', path: '/whole', value: true }];
    const parsed = parseJournal(bytes(encodeHeader(snapshotAt12) + encodeChange(13, ops)), context);
    expect(parsed.records[0]).toEqual({ kind: 'change', line: 2, revision: 13, ops });
  });

  test('unknown members of a change are ignored', () => {
    const text = encodeHeader(snapshotAt12) + '{"revision":13,"ops":[{"op":"remove","path":"/a","note":1}],"extra":true}\n';
    expect(parseJournal(bytes(text), context).records).toEqual([{ kind: 'change', line: 2, revision: 13, ops: [{ op: 'remove', path: '/a' }] }]);
  });
});

describe('parseJournal: a torn last line', () => {
  const complete = encodeHeader(snapshotAt12) + encodeChange(13, changes[0]![1]);

  test('an unfinished append is left out and measured', () => {
    const torn = encodeChange(14, changes[1]![1]).slice(0, 25);
    const parsed = parseJournal(bytes(complete + torn), context);
    expect(parsed.records).toHaveLength(1);
    expect(parsed.lastRevision).toBe(13);
    expect(parsed.completeLength).toBe(Buffer.byteLength(complete));
    expect(parsed.tornLength).toBe(25);
  });

  test('a whole record without its newline is still torn (the append was not finished)', () => {
    const whole = encodeChange(14, changes[1]![1]).trimEnd();
    const parsed = parseJournal(bytes(complete + whole), context);
    expect(parsed.lastRevision).toBe(13);
    expect(parsed.tornLength).toBe(Buffer.byteLength(whole));
  });

  test('a cut inside a multi-byte character is torn, not damaged', () => {
    const line = bytes(encodeChange(14, [{ op: 'add', path: '/x', value: '😀' }]));
    const cut = line.subarray(0, line.indexOf(0xf0) + 2);
    const parsed = parseJournal(concat(bytes(complete), cut), context);
    expect(parsed.tornLength).toBe(cut.length);
    expect(parsed.completeLength).toBe(Buffer.byteLength(complete));
  });

  test('garbage after the last newline is torn too (it was never acknowledged)', () => {
    const parsed = parseJournal(concat(bytes(complete), new Uint8Array([0xff, 0x00, 0x7b])), context);
    expect(parsed.tornLength).toBe(3);
    expect(parsed.records).toHaveLength(1);
  });

  test('a torn header is damage: there is nothing to continue from', () => {
    expect(damaged('').message).toBe(damagedMessage(1, 'the header line is incomplete'));
    expect(damaged(encodeHeader(snapshotAt12).trimEnd()).message).toBe(damagedMessage(1, 'the header line is incomplete'));
  });
});

describe('parseJournal: damaged lines name the file and the line', () => {
  const header = encodeHeader(snapshotAt12);

  test('a line that is not JSON', () => {
    const error = damaged(header + encodeChange(13, []) + '{"revision":14,"ops":[\n');
    expect(error.message).toMatch(/^Line 3 of \/srv\/data\/store\.json\.journal is damaged: not valid JSON \(/);
    expect(error.message).toContain('The store did not start and changed no file');
    // The client is told which file, by its role: no name, no folder.
    expect(error.detail).toBe("Line 3 of the journal is damaged; the store did not start (the server's log says what to do)");
  });

  test('an empty line in the middle', () => {
    expect(damaged(header + '\n' + encodeChange(13, [])).message).toMatch(/^Line 2 of \/srv\/data\/store\.json\.journal is damaged: not valid JSON/);
  });

  test('a line that is not UTF-8', () => {
    const error = damaged(concat(bytes(header), new Uint8Array([0x22, 0xff, 0x22, 0x0a])));
    expect(error.message).toBe(damagedMessage(2, 'not valid UTF-8 text'));
  });

  test('a first line that is not a header of this version', () => {
    const reason = `it is not a journal header of this version (expected {"format":"${JOURNAL_FORMAT}","snapshot":{…}})`;
    const bad = [
      encodeChange(1, []),
      '{"format":"express-jsonstore journal 2","snapshot":{"revision":1,"sha256":"' + 'a'.repeat(64) + '"}}\n',
      `{"format":"${JOURNAL_FORMAT}"}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":1,"sha256":"${'A'.repeat(64)}"}}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":1,"sha256":"${'a'.repeat(63)}"}}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":-1,"sha256":"${'a'.repeat(64)}"}}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":1.5,"sha256":"${'a'.repeat(64)}"}}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":"1","sha256":"${'a'.repeat(64)}"}}\n`,
      `{"format":"${JOURNAL_FORMAT}","snapshot":{"revision":9007199254740992,"sha256":"${'a'.repeat(64)}"}}\n`,
      '[]\n',
      'null\n',
    ];
    for (const line of bad) expect(damaged(line).message, line).toBe(damagedMessage(1, reason));
  });

  test('a record that is not an object', () => {
    for (const line of ['[]', '13', '"x"', 'null']) {
      expect(damaged(header + line + '\n').message).toBe(damagedMessage(2, 'it is not a JSON object'));
    }
  });

  test('a change whose revision is not a positive integer', () => {
    for (const revision of ['0', '-1', '13.5', '"13"', 'null', '1e400']) {
      expect(damaged(header + `{"revision":${revision},"ops":[]}\n`).message, revision).toBe(damagedMessage(2, '"revision" is not a positive integer'));
    }
    expect(damaged(header + '{"ops":[]}\n').message).toBe(damagedMessage(2, '"revision" is not a positive integer'));
  });

  test('a change out of sequence: missing, repeated or out of place', () => {
    expect(damaged(header + encodeChange(14, [])).message).toBe(
      damagedMessage(2, 'its revision 14 does not follow revision 12 (a line is missing, repeated or out of place)'),
    );
    expect(damaged(header + encodeChange(13, []) + encodeChange(13, [])).message).toBe(
      damagedMessage(3, 'its revision 13 does not follow revision 13 (a line is missing, repeated or out of place)'),
    );
    expect(damaged(header + encodeChange(13, []) + encodeChange(15, [])).message).toContain('its revision 15 does not follow revision 13');
    expect(damaged(header + encodeChange(12, [])).message).toContain('its revision 12 does not follow revision 12');
  });

  test('a change whose operations are not a valid JSON Patch', () => {
    expect(damaged(header + '{"revision":13,"ops":{}}\n').message).toBe(
      damagedMessage(2, 'A JSON Patch document must be an array of operations, such as [{"op":"replace","path":"/name","value":"x"}]'),
    );
    expect(damaged(header + '{"revision":13,"ops":[{"op":"frobnicate","path":"/a"}]}\n').message).toBe(
      damagedMessage(2, 'JSON Patch operation 0: "op" must be one of add, remove, replace, move, copy, test'),
    );
    expect(damaged(header + '{"revision":13,"ops":[{"op":"add","path":"/a"}]}\n').message).toBe(
      damagedMessage(2, 'JSON Patch operation 0: "add" needs a "value"'),
    );
    expect(damaged(header + '{"revision":13,"ops":[{"op":"remove","path":"a"}]}\n').message).toContain('is not a JSON Pointer');
  });

  test('a line that is neither a change nor a marker', () => {
    for (const line of ['{}', '{"revision":13}', '{"snapshot":{"revision":12}}', `{"snapshot":{"revision":12,"sha256":"${'g'.repeat(64)}"}}`]) {
      expect(damaged(header + line + '\n').message, line).toBe(damagedMessage(2, 'it is neither a change nor a snapshot marker'));
    }
  });

  test('a marker outside the revisions written so far', () => {
    expect(damaged(header + encodeMarker({ revision: 11, sha256: 'c'.repeat(64) })).message).toBe(
      damagedMessage(2, 'its snapshot revision 11 is outside the revisions written so far (12 to 12)'),
    );
    expect(damaged(header + encodeChange(13, []) + encodeMarker({ revision: 14, sha256: 'c'.repeat(64) })).message).toBe(
      damagedMessage(3, 'its snapshot revision 14 is outside the revisions written so far (12 to 13)'),
    );
  });

  test('damage before a torn tail is still damage', () => {
    const error = damaged(header + 'not json\n' + '{"revision":13,"op');
    expect(error.message).toMatch(/^Line 2 of /);
  });
});

describe('snapshots', () => {
  const document: JsonValue = JSON.parse('{"b":1,"a":[1,{"x":null}],"__proto__":{"own":true},"é":"😀","":0}') as JsonValue;

  test('are the document pretty-printed with a final newline', () => {
    expect(encodeSnapshot({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}\n');
    expect(encodeSnapshot(null)).toBe('null\n');
  });

  test('parse back exactly, key order and an own "__proto__" key included', () => {
    const parsed = parseSnapshot(bytes(encodeSnapshot(document)), context.snapshotPath);
    expect(JSON.stringify(parsed)).toBe(JSON.stringify(document));
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed as object)).toEqual(['b', 'a', '__proto__', 'é', '']);
  });

  test('hand-written JSON is accepted, with a byte order mark too', () => {
    expect(parseSnapshot(bytes('{"a":1}'), context.snapshotPath)).toEqual({ a: 1 });
    expect(parseSnapshot(bytes('\uFEFF{"a":1}\n'), context.snapshotPath)).toEqual({ a: 1 });
    expect(parseSnapshot(bytes('  [1,2]  \r\n'), context.snapshotPath)).toEqual([1, 2]);
  });

  test('invalid JSON names the file, the line and the column', () => {
    let caught: unknown;
    try {
      parseSnapshot(bytes('{\n  "a": 1,\n}\n'), context.snapshotPath);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StorageError);
    const error = caught as StorageError;
    expect(error.message).toMatch(/^\/srv\/data\/store\.json is not valid JSON \(.*; line 3, column 1\)\. The store did not start and changed no file: fix the file or restore a backup, then start again$/);
    expect(error.detail).toBe("The snapshot is not valid JSON at line 3, column 1; the store did not start (the server's log says what to do)");
  });

  test('empty or truncated snapshots are invalid JSON', () => {
    for (const text of ['', '{"a":', '{"a":1']) {
      expect(() => parseSnapshot(bytes(text), context.snapshotPath)).toThrow(/^\/srv\/data\/store\.json is not valid JSON/);
    }
  });

  test('bytes that are not UTF-8 name the file', () => {
    let caught: unknown;
    try {
      parseSnapshot(new Uint8Array([0x7b, 0x22, 0xc3, 0x22, 0x3a, 0x31, 0x7d]), context.snapshotPath);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).message).toBe(
      '/srv/data/store.json is not valid UTF-8 text. The store did not start and changed no file: fix the file or restore a backup, then start again',
    );
    expect((caught as StorageError).detail).toBe("The snapshot is not valid UTF-8 text; the store did not start (the server's log says what to do)");
  });
});

describe('startupError', () => {
  test('keeps the full message for the log and a short one for clients', () => {
    const cause = new Error('EACCES');
    const error = startupError('/srv/data/store.json: permission denied. Fix the permissions', 'store.json cannot be read', cause);
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe('/srv/data/store.json: permission denied. Fix the permissions');
    expect(error.detail).toBe("store.json cannot be read; the store did not start (the server's log says what to do)");
    expect(error.cause).toBe(cause);
    expect(error.status).toBe(503);
  });
});
