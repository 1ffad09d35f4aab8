import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentProgress, type Dataset, type Model } from '../../src/core/index.js';
import { poisoningSection } from '../../src/audit/sections/poisoning.js';
import type { AuditContext } from '../../src/audit/index.js';

const images: Dataset = { name: 'img', x: { data: new Float32Array(4 * 16), shape: [4, 4, 4, 1] }, y: Int32Array.of(0, 1, 2, 0), classNames: ['a', 'b', 'c'] };
const table: Dataset = { name: 'tab', x: { data: new Float32Array(4 * 3), shape: [4, 3] }, y: Int32Array.of(0, 1, 2, 0), classNames: ['a', 'b', 'c'] };
const ctx = (train?: Dataset): AuditContext => ({ model: {} as Model, modelFiles: [], train, test: images, seed: 1, progress: silentProgress });

test('the poisoning section says why it does not apply, with the command to run instead', () => {
  assert.match(String(poisoningSection.applies!(ctx())), /training data are not known.*bulwark data scan/);
  assert.match(String(poisoningSection.applies!(ctx(table))), /needs image inputs.*bulwark data scan/);
  assert.equal(poisoningSection.applies!(ctx(images)), true);
  assert.equal(poisoningSection.id, 'poisoning');
});
