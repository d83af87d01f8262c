// マイ・ポータル: check, in this browser, every record the history page shows.
//
// For each row: fetch its record's bytes, inclusion proof and signed tree head from
// /api/history; compute the leaf hash SHA-256(0x00 || bytes) with WebCrypto; walk the
// RFC 9162 inclusion proof up to the head's root; verify the head's Ed25519 signature
// with an audit key pinned in the portal's configuration (the page's data-keys); decode
// the record (Avro, with the writer schema its fingerprint names, from /api/schemas) and
// check that the row shows what the bytes say. The row then reads ✓ or ✗ and why.
// No eval, no inline script (CSP script-src 'self'); nothing leaves the browser.
'use strict';

(() => {
  const MAGIC0 = 0xc3;
  const MAGIC1 = 0x01;

  // -- bytes ------------------------------------------------------------------------------

  const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
  const unhex = (s) => {
    if (typeof s !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error('bad hex');
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
    return out;
  };
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // -- RFC 9162 hashing ---------------------------------------------------------------------

  const sha256 = async (...parts) =>
    new Uint8Array(await crypto.subtle.digest('SHA-256', concat(parts)));
  const leafHash = (data) => sha256(Uint8Array.of(0), data);
  const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

  // RFC 9162 §2.1.3.2, with arithmetic instead of 32-bit bit operations.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
      throw new Error(`leaf ${index} is not in a tree of ${size}`);
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    const odd = (n) => n % 2 === 1;
    const half = (n) => Math.floor(n / 2);
    for (const p of proof) {
      if (p.length !== 32) throw new Error('a proof hash is not 32 bytes');
      if (sn === 0) throw new Error('the proof is too long');
      if (odd(fn) || fn === sn) {
        r = await nodeHash(p, r);
        if (!odd(fn)) {
          while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    if (sn !== 0) throw new Error('the proof is too short');
    return r;
  }

  // -- Avro binary, for the fields the page shows ---------------------------------------------

  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

  class AvroReader {
    constructor(bytes, pos) {
      this.bytes = bytes;
      this.pos = pos;
      this.named = new Map();
      this.signature = null; // [field start, content start, end] of header.signature
    }

    take(n) {
      if (n < 0 || this.pos + n > this.bytes.length) throw new Error('the bytes end too soon');
      const out = this.bytes.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }

    long() {
      let n = 0;
      let scale = 1;
      for (let i = 0; ; i++) {
        if (i >= 8) throw new Error('a number too long for this page'); // 2^56 > any count here
        const b = this.take(1)[0];
        n += (b & 0x7f) * scale;
        scale *= 128;
        if (!(b & 0x80)) break;
      }
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    }

    read(schema, namespace) {
      if (Array.isArray(schema)) return this.read(schema[this.index(schema.length)], namespace);
      if (typeof schema === 'string') {
        if (PRIMITIVES.has(schema)) return this.primitive(schema);
        const named = this.named.get(schema) || this.named.get(`${namespace}.${schema}`);
        if (!named) throw new Error(`unknown type ${schema}`);
        return this.read(named, namespace);
      }
      const type = schema.type;
      if (PRIMITIVES.has(type)) return this.primitive(type);
      const ns = schema.namespace || namespace;
      if (type === 'record' || type === 'enum' || type === 'fixed') {
        this.named.set(schema.name.includes('.') ? schema.name : `${ns}.${schema.name}`, schema);
        this.named.set(schema.name, schema);
      }
      if (type === 'record') {
        const out = {};
        for (const field of schema.fields) {
          const start = this.pos;
          out[field.name] = this.read(field.type, ns);
          if (schema.name === 'Header' && field.name === 'signature') {
            const length = this.pos - start - out.signature.length;
            this.signature = [start, start + length, this.pos];
          }
        }
        return out;
      }
      if (type === 'enum') {
        const symbol = schema.symbols[this.index(schema.symbols.length)];
        return symbol;
      }
      if (type === 'fixed') return this.take(schema.size);
      if (type === 'array' || type === 'map') {
        const out = type === 'array' ? [] : {};
        for (;;) {
          let count = this.long();
          if (count === 0) break;
          if (count < 0) { count = -count; this.long(); }
          if (count > this.bytes.length) throw new Error('a block longer than the bytes');
          for (let i = 0; i < count; i++) {
            if (type === 'array') out.push(this.read(schema.items, ns));
            else out[this.primitive('string')] = this.read(schema.values, ns);
          }
        }
        return out;
      }
      throw new Error(`type ${type} is not read by this page`);
    }

    index(n) {
      const i = this.long();
      if (i < 0 || i >= n) throw new Error('a union or enum index out of range');
      return i;
    }

    primitive(type) {
      switch (type) {
        case 'null': return null;
        case 'boolean': {
          const b = this.take(1)[0];
          if (b > 1) throw new Error('a boolean that is neither 0 nor 1');
          return b === 1;
        }
        case 'int': case 'long': return this.long();
        case 'float': return new DataView(this.take(4).slice().buffer).getFloat32(0, true);
        case 'double': return new DataView(this.take(8).slice().buffer).getFloat64(0, true);
        case 'bytes': return this.take(this.long()).slice();
        case 'string': return utf8.decode(this.take(this.long()));
        default: throw new Error(`type ${type}`);
      }
    }
  }

  // A single-object-encoded message: C3 01, 8 bytes of fingerprint, the Avro body.
  function decode(bytes, schemas, name) {
    if (bytes.length < 10 || bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) {
      throw new Error('not a single-object encoding');
    }
    const schema = schemas[hex(bytes.subarray(2, 10))];
    if (!schema) throw new Error('written with a schema this portal does not name');
    if (schema.name !== name) throw new Error(`a ${schema.name}, not a ${name}`);
    const reader = new AvroReader(bytes, 10);
    const value = reader.read(schema, schema.namespace || '');
    if (reader.pos !== bytes.length) throw new Error('bytes after the end of the message');
    return { value, signature: reader.signature };
  }

  // -- the tree head's signature ---------------------------------------------------------------

  async function ed25519(publicKey, signature, message) {
    let key;
    try {
      key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      return null; // this browser has no Ed25519 in WebCrypto
    }
    return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  }

  class Failure extends Error {
    constructor(ja, en) { super(en); this.ja = ja; this.en = en; }
  }
  const fail = (ja, en) => { throw new Failure(ja, en); };

  async function checkHead(head, partition, keys, schemas) {
    const bytes = unb64(head.bytes);
    const { value, signature } = decode(bytes, schemas, 'AuditTreeHead');
    if (value.tree_size !== head.tree_size || hex(value.root_hash) !== head.root_hash
        || value.key_id !== head.key_id) {
      fail('ツリーヘッドの内容が一致しません', "the tree head's fields disagree with its bytes");
    }
    if (value.partition !== partition) {
      fail('別の区画のツリーヘッドです', "the tree head is another partition's");
    }
    const publicKey = keys[value.key_id];
    if (!publicKey) fail('設定された鍵で署名されていません', 'signed with a key this portal does not pin');
    if (!signature) fail('署名が見つかりません', 'the tree head carries no signature');
    const signed = concat([bytes.subarray(0, signature[0]), Uint8Array.of(0), bytes.subarray(signature[2])]);
    const ok = await ed25519(unb64(publicKey), bytes.subarray(signature[1], signature[2]), signed);
    if (ok === null) {
      fail('このブラウザは Ed25519 署名を検証できません', 'this browser cannot check Ed25519 signatures');
    }
    if (!ok) fail('ツリーヘッドの署名が不正です', "the tree head's signature does not verify");
  }

  // -- what the row shows ------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');
  function jst(ms) {
    const d = new Date(ms + 9 * 3600 * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
      + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  const text = (element, css) => {
    const found = element.querySelector(css);
    return found ? found.textContent.trim() : null;
  };

  function checkShown(row, events, record, answer, apiRecord) {
    const when = jst(record.occurred_at);
    const shown = [
      ['audit_key', record.audit_key, answer.audit_key],
      ['step', record.step, row.dataset.step],
      ['requester', record.requester || record.actor, row.dataset.requester],
      ['provider', record.provider || '', row.dataset.provider],
      ['items', record.items.join(' '), row.dataset.items],
      ['occurred_at', when, text(row, '.when')],
      ['legal_basis', record.legal_basis || '', text(row, '.legal')],
      ['step (API)', record.step, apiRecord.step],
      ['occurred_at (API)', record.occurred_at, apiRecord.occurred_at_ms],
      ['legal_basis (API)', record.legal_basis, apiRecord.legal_basis],
    ];
    for (const event of events) shown.push(['timeline', when.slice(11), text(event, '.when')]);
    for (const [field, said, displayed] of shown) {
      if (said !== displayed) {
        if (field === 'audit_key') fail('あなた以外の人の記録です', 'a record about someone else');
        fail(`表示が記録と一致しません(${field})`, `the page does not show what the record says (${field})`);
      }
    }
  }

  async function checkRow(row, events, apiRecord, answer, keys, schemas, checked) {
    if (!apiRecord) fail('ポータルがこの記録を返しませんでした', 'the portal did not give this record');
    if (!apiRecord.bytes) fail('記録のバイト列がありません', "the portal gave no bytes for this record");
    if (!apiRecord.head || !apiRecord.proof) {
      fail('まだ署名付きツリーヘッドに含まれていません', 'no signed tree head covers this record yet');
    }
    const bytes = unb64(apiRecord.bytes);
    const head = apiRecord.head;
    const signed = (answer.heads || {})[String(apiRecord.partition)];
    if (!signed || signed.tree_size !== head.tree_size || signed.root_hash !== head.root_hash) {
      fail('ツリーヘッドが返されていません', 'the portal gave no signed tree head for the proof');
    }
    const root = await rootFromInclusion(apiRecord.leaf_index, head.tree_size, await leafHash(bytes),
      apiRecord.proof.map(unhex));
    if (!equal(root, unhex(head.root_hash))) {
      fail('署名付きツリーに含まれていません(包含証明が合いません)', 'not in the signed tree: the inclusion proof fails');
    }
    if (!checked.has(signed.bytes)) {
      checked.set(signed.bytes, checkHead(signed, apiRecord.partition, keys, schemas));
    }
    await checked.get(signed.bytes);
    const { value } = decode(bytes, schemas, 'AuditRecord');
    checkShown(row, events, value, answer, apiRecord);
  }

  // -- the page ------------------------------------------------------------------------------------

  function mark(elements, ok, ja, en) {
    for (const element of elements) {
      const cell = element.querySelector('.verdict');
      if (!cell) continue;
      cell.className = `verdict ${ok ? 'ok' : 'bad'}`;
      cell.textContent = '';
      cell.append(ok ? '✓ 検証済み' : `✗ ${ja}`);
      const en_ = document.createElement('span');
      en_.className = 'en';
      en_.textContent = ok ? ' verified' : ` ${en}`;
      if (element.tagName === 'TR') cell.append(document.createElement('br'));
      cell.append(en_);
      element.dataset.verdict = ok ? 'verified' : 'failed';
      if (!ok) element.dataset.reason = en;
    }
  }

  function status(box, state, ja, en) {
    const line = document.getElementById('verify-status');
    line.className = state;
    line.textContent = `${ja} `;
    const span = document.createElement('span');
    span.className = 'en';
    span.textContent = en;
    line.append(span);
    box.dataset.state = state === 'checking' ? 'checking' : 'done';
  }

  async function main() {
    const box = document.getElementById('verify');
    if (!box) return;
    status(box, 'checking', '検証しています…', 'checking…');
    let answer;
    let schemas;
    let keys;
    try {
      keys = JSON.parse(box.dataset.keys || '{}');
      const [history, found] = await Promise.all([
        fetch('/api/history', { credentials: 'same-origin' }),
        fetch('/api/schemas', { credentials: 'same-origin' }),
      ]);
      if (!history.ok || !found.ok) throw new Error(`the portal answered ${history.status}`);
      answer = await history.json();
      schemas = (await found.json()).schemas;
    } catch (e) {
      status(box, 'bad', '検証できませんでした。', `Could not check: ${e.message}`);
      return;
    }
    const byRecord = new Map(answer.records.map((r) => [`${r.partition}:${r.position}`, r]));
    const heads = new Map();
    const seen = new Set();
    const rows = Array.from(document.querySelectorAll('tr.record'));
    let verified = 0;
    for (const row of rows) {
      const key = row.dataset.record || '';
      const events = Array.from(document.querySelectorAll('li.event'))
        .filter((e) => e.dataset.record === key);
      try {
        if (!key) fail('証明できる位置がありません', 'the portal names no place in the trail for it');
        if (seen.has(key)) fail('同じ記録が二度表示されています', 'the same record is shown twice');
        seen.add(key);
        await checkRow(row, events, byRecord.get(key), answer, keys, schemas, heads);
        mark([row, ...events], true);
        verified += 1;
      } catch (e) {
        const ja = e instanceof Failure ? e.ja : `検証できません(${e.message})`;
        mark([row, ...events], false, ja, e instanceof Failure ? e.en : `cannot check: ${e.message}`);
      }
    }
    const all = verified === rows.length;
    status(box, all ? 'ok' : 'bad',
      `${rows.length}件中${verified}件の記録を、このブラウザで検証しました。`,
      `${verified} of ${rows.length} records verified in this browser.`);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
})();
