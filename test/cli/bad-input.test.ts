import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bulwark, tempDir } from './helpers.js';

const dir = tempDir('bad');
const csv = path.join(dir, 'data.csv');
writeFileSync(csv, 'a,b,label\n1,2,x\n3,NaN,y\n');
const ragged = path.join(dir, 'ragged.csv');
writeFileSync(ragged, 'a,b,label\n1,2,x\n3,4\n');
const corrupt = path.join(dir, 'corrupt');
mkdirSync(corrupt);
writeFileSync(path.join(corrupt, 'model.json'), '{"modelTopology": ');
const truncated = path.join(dir, 'truncated.onnx');
writeFileSync(truncated, Buffer.from([8, 7, 18, 4, 0x62]));

const cases: { args: string[]; expect: RegExp }[] = [
  { args: ['train', '--dataset', 'imagenet'], expect: /unknown dataset 'imagenet'.*digits/ },
  { args: ['train', '--model', 'resnet'], expect: /resnet.*logistic, mlp, cnn/ },
  { args: ['train', '--epochs', 'many'], expect: /'many' is not a positive integer/ },
  { args: ['train', '--dataset', path.join(dir, 'missing.csv'), '--label', 'y'], expect: /not found.*missing\.csv/ },
  { args: ['train', '--dataset', csv], expect: /--label/ },
  { args: ['train', '--dataset', csv, '--label', 'nope'], expect: /no column 'nope'.*'a', 'b', 'label'/ },
  { args: ['train', '--dataset', csv, '--label', 'label', '--out', path.join(dir, 'never')], expect: /data\.csv.*row 2.*'b'|data\.csv.*'b'.*row 2|line 3/ },
  { args: ['train', '--dataset', ragged, '--label', 'label'], expect: /ragged\.csv.*line 3/ },
  { args: ['eval'], expect: /--model is required/ },
  { args: ['eval', '--model', path.join(dir, 'nowhere')], expect: /model not found/ },
  { args: ['eval', '--model', corrupt], expect: /corrupt.*model\.json.*not valid JSON/ },
  { args: ['eval', '--model', truncated], expect: /truncated\.onnx/ },
  { args: ['eval', '--model', 'http://127.0.0.1:9/v2/models/x', '--json'], expect: /cannot reach/ },
  { args: ['audit', '--model', corrupt, '--out', path.join(dir, 'no-report')], expect: /not valid JSON/ },
  { args: ['frobnicate'], expect: /unknown command 'frobnicate'/ },
];

for (const c of cases) {
  test(`bad input: bulwark ${c.args.map((a) => path.basename(a)).join(' ')}`, async () => {
    const r = await bulwark(c.args);
    assert.equal(r.code, 2, `exit code for ${c.args.join(' ')}: stderr=${r.stderr}`);
    assert.match(r.stderr, c.expect);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(r.stdout, '', 'nothing on stdout');
  });
}

test('a failed run leaves nothing half-written in --out', async () => {
  assert.equal(existsSync(path.join(dir, 'never')), false);
  assert.equal(existsSync(path.join(dir, 'no-report')), false);
});
