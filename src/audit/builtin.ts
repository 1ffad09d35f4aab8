import { registerAuditSection } from './sections.js';
import { modelCardSection } from './sections/model-card.js';
import { provenanceSection } from './sections/provenance.js';
import { evasionSection } from './sections/evasion.js';
import { evasionApiSection } from './sections/evasion-api.js';
import { privacySection } from './sections/privacy.js';
import { poisoningSection } from './sections/poisoning.js';
import { extractionSection } from './sections/extraction.js';
import { servingSection } from './sections/serving.js';

let done = false;

/** Registers the sections Bulwark ships with, once. */
export function registerBuiltinSections(): void {
  if (done) return;
  done = true;
  registerAuditSection(modelCardSection);
  registerAuditSection(provenanceSection);
  registerAuditSection(evasionSection);
  registerAuditSection(evasionApiSection);
  registerAuditSection(poisoningSection);
  registerAuditSection(privacySection);
  registerAuditSection(extractionSection);
  registerAuditSection(servingSection);
}
