import type { Finding } from '../../core/index.js';
import { sha256Bytes, sha256File, verifyLedger } from '../../provenance/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

/**
 * Fingerprints of what was audited, so a report can be tied to exact bytes. Signing and
 * verification (the provenance area) will add whether those bytes are the signed ones.
 */
export const provenanceSection: AuditSection = {
  id: 'provenance',
  title: 'Provenance of data and model',
  threat: 'provenance',
  about: {
    tested: 'whether the report can be tied to the exact bytes of the model and data it examined, and whether the audit ledger is intact',
    how: 'SHA-256 of every model and data file and of the test split as evaluated; the fingerprints are appended to the hash-chained ledger, which is then verified',
  },
  estimate: { full: 1, quick: 1 },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const findings: Finding[] = [];
    const dataFiles = [...new Set([...(ctx.train?.sources ?? []), ...(ctx.test.sources ?? [])])];
    const dataDigests = await Promise.all(dataFiles.map((f) => sha256File(f)));
    const testDigest = sha256Bytes(ctx.test.x.data, ctx.test.y);
    findings.push({
      area: 'provenance',
      id: 'provenance.data-fingerprint',
      title: 'Dataset fingerprint',
      severity: 'info',
      metric: 'dataset files hashed',
      value: dataDigests.length,
      evidence: [
        ...dataDigests.map((d) => `sha256 ${d.sha256}  ${d.size} bytes  ${d.path}`),
        `sha256 ${testDigest}  test split as evaluated (${ctx.test.x.shape[0]} samples, features and labels)`,
      ],
    });
    const modelDigests = await Promise.all(ctx.modelFiles.map((f) => sha256File(f)));
    if (ctx.modelFiles.length === 0) {
      findings.push({
        area: 'provenance',
        id: 'provenance.model-fingerprint',
        title: 'Model fingerprint',
        severity: 'low',
        metric: 'model files hashed',
        value: 0,
        passed: false,
        evidence: [`${ctx.model.info.name} is remote: its bytes cannot be fingerprinted from here, only its answers`],
      });
    } else {
      const digests = modelDigests;
      findings.push({
        area: 'provenance',
        id: 'provenance.model-fingerprint',
        title: 'Model fingerprint',
        severity: 'info',
        passed: true,
        metric: 'model files hashed',
        value: digests.length,
        evidence: digests.map((d) => `sha256 ${d.sha256}  ${d.size} bytes  ${d.path}`),
      });
    }
    if (ctx.ledger) {
      await ctx.ledger.append({
        kind: 'audit.fingerprints',
        payload: {
          model: ctx.model.info.name,
          modelFiles: modelDigests.map((d) => ({ path: d.path, sha256: d.sha256, size: d.size })),
          dataFiles: dataDigests.map((d) => ({ path: d.path, sha256: d.sha256, size: d.size })),
          testSplit: { samples: ctx.test.x.shape[0], sha256: testDigest },
        },
      });
      const check = await verifyLedger(ctx.ledger);
      findings.push({
        area: 'provenance',
        id: 'provenance.ledger',
        title: 'Ledger',
        severity: check.valid ? 'info' : 'high',
        metric: 'ledger entries verified',
        value: check.entries,
        passed: check.valid,
        evidence: [
          `ledger ${ctx.ledger.location}: ${check.valid ? 'the hash chain verifies' : `BROKEN at entry ${check.firstBad?.seq}: ${check.firstBad?.message}`}`,
          `head: ${check.head ? `#${check.head.seq} ${check.head.hash}` : 'empty'}; ${check.checkpoints} signed checkpoint(s), ${check.unanchored} entries after the last one`,
          'this audit recorded its model, data and test-split fingerprints there',
        ],
      });
    }
    return findings;
  },
};
