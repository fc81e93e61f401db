/**
 * src/document/etag.ts: strong ETags from content. Same JSON, same tag;
 * different JSON, different tag; each representation has its own suffix,
 * and the content part is recovered from any of them.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { contentPartOf, contentTag, formatEtag, type Representation } from '../../src/document/etag.js';

const representations: Representation[] = ['', 'pretty', 'shallow', 'shallow-pretty'];

describe('contentTag', () => {
  test('is the first 27 characters of the base64url SHA-256 of the text', () => {
    for (const text of ['{}', '[]', 'null', '{"a":1}', '"é😀"', '']) {
      const expected = createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, 27);
      expect(contentTag(text), text).toBe(expected);
    }
  });

  test('matches a known SHA-256 test vector', () => {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    const digest = Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex');
    expect(contentTag('abc')).toBe(digest.toString('base64url').slice(0, 27));
    expect(contentTag('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaO');
  });

  test('is 27 URL-safe characters: no quotes, no padding', () => {
    for (let i = 0; i < 200; i++) expect(contentTag(JSON.stringify({ i }))).toMatch(/^[A-Za-z0-9_-]{27}$/);
  });

  test('the same value always gets the same tag', () => {
    const value = { sniffles: [{ name: 'Whiskers' }], count: 3 };
    const tag = contentTag(JSON.stringify(value));
    expect(contentTag(JSON.stringify(structuredClone(value)))).toBe(tag);
    expect(contentTag(JSON.stringify(JSON.parse(JSON.stringify(value))))).toBe(tag);
  });

  test('any change gives a different tag', () => {
    const texts = [
      '{"count":3}',
      '{"count":4}',
      '{"count":"3"}',
      '{"count":3.5}',
      '{"Count":3}',
      '{"count":[3]}',
      '{"count":null}',
      '{}',
      '[]',
      '""',
      'null',
      '0',
      '{"a":1,"b":2}',
      // Key order is part of what a client sees, so it is part of the tag.
      '{"b":2,"a":1}',
    ];
    const tags = new Set(texts.map(contentTag));
    expect(tags.size).toBe(texts.length);
  });

  test('10 000 distinct values get 10 000 distinct tags', () => {
    const tags = new Set<string>();
    for (let i = 0; i < 10_000; i++) tags.add(contentTag(JSON.stringify({ n: i })));
    expect(tags.size).toBe(10_000);
  });
});

describe('formatEtag', () => {
  test('a strong tag in quotes, with no suffix by default', () => {
    expect(formatEtag('abc')).toBe('"abc"');
    expect(formatEtag('abc', '')).toBe('"abc"');
  });

  test('each representation gets its own suffix', () => {
    expect(formatEtag('abc', 'pretty')).toBe('"abc-pretty"');
    expect(formatEtag('abc', 'shallow')).toBe('"abc-shallow"');
    expect(formatEtag('abc', 'shallow-pretty')).toBe('"abc-shallow-pretty"');
  });

  test('the four representations of one value have four different tags', () => {
    const tag = contentTag('{"a":1}');
    const etags = representations.map((representation) => formatEtag(tag, representation));
    expect(new Set(etags).size).toBe(4);
    for (const etag of etags) expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}(-(pretty|shallow|shallow-pretty))?"$/);
  });
});

describe('contentPartOf', () => {
  test('drops the representation suffix, whichever it is', () => {
    const tag = contentTag('{"a":1}');
    for (const representation of representations) {
      const opaque = formatEtag(tag, representation).slice(1, -1);
      expect(contentPartOf(opaque), representation).toBe(tag);
    }
  });

  test('a "-" inside the 27 hash characters is not taken for a suffix', () => {
    // Find values whose tag has "-" in it (base64url uses "-"); contentTag("abc") has one too.
    const withDash: string[] = [];
    for (let i = 0; withDash.length < 20; i++) {
      const tag = contentTag(String(i));
      if (tag.includes('-')) withDash.push(tag);
    }
    for (const tag of withDash) {
      expect(contentPartOf(tag)).toBe(tag);
      for (const representation of representations) {
        expect(contentPartOf(formatEtag(tag, representation).slice(1, -1))).toBe(tag);
      }
    }
  });

  test('a tag that is not one of ours comes back unchanged when short, and cut at the first "-" after 27 characters', () => {
    expect(contentPartOf('')).toBe('');
    expect(contentPartOf('abc')).toBe('abc');
    expect(contentPartOf('a-b-c')).toBe('a-b-c');
    const long = 'x'.repeat(27);
    expect(contentPartOf(`${long}-anything`)).toBe(long);
    expect(contentPartOf(`${long}y-z`)).toBe(`${long}y`);
  });

  test('tags of different content stay different after the suffix is dropped', () => {
    const a = contentTag('{"a":1}');
    const b = contentTag('{"a":2}');
    expect(contentPartOf(`${a}-pretty`)).not.toBe(contentPartOf(`${b}-pretty`));
  });
});
